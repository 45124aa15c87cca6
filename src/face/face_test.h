/*
 * face_test.h — entry points of src/face/ for tests/ and bench/ only (the
 * server reaches them through fa_face_analyze). Not part of face.h, the
 * module's API.
 */
#ifndef FACEAUTH_FACE_TEST_H
#define FACEAUTH_FACE_TEST_H

#include "faceauth/face.h"
#include "faceauth/vision.h"

/*
 * The reduction rule of fa_face_analyze (see face.c), exposed so that
 * bench/pipeline.c times the same work as the server. Pure; any thread.
 * fa_face_decode_reduction: the factor (1, 2, 4 or 8) an image of this kind
 * and size is first decoded at (fa_image_decode_reduced).
 * fa_face_refine_reduction: given the n_found faces found at that factor
 * (largest first, as fa_detect reports them; faces[1] is read only when
 * n_found > 1), the factor to decode at instead: smaller when the largest
 * face is too small there for a full-detail chip, 1 when a decision of
 * opts' face policy is too close to call; the same factor otherwise.
 */
int fa_face_decode_reduction(const struct fa_image_info *info);
int fa_face_refine_reduction(const struct fa_face_opts *opts, enum fa_face_purpose purpose,
                             int reduce, const struct fa_face *faces, int n_found);

#endif
