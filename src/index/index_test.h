/*
 * index_test.h — entry points of src/index/ for tests/ and bench/ only (the
 * server never calls them). Not part of index.h, the module's API.
 */
#ifndef FACEAUTH_INDEX_TEST_H
#define FACEAUTH_INDEX_TEST_H

#include <stddef.h>

#include "faceauth/index.h"

/* Bytes of memory the index holds (matrices and id arrays). */
size_t fa_index_bytes(struct fa_index *idx);

#endif
