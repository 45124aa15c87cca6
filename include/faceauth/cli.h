/*
 * cli.h — the benchmark subcommands of the faceauth binary (src/cli/).
 *
 * main.c dispatches `faceauth compare|embed|score-pairs|quality ...` here
 * (and `user list`, `models check` and the help pages, at the end). Each
 * function takes the subcommand's own argv (argv[0] is the subcommand name,
 * flags removed), the config (or only the folder holding the ONNX models)
 * and the value of --model, writes results to stdout and messages to
 * stderr, and returns the process exit status. compare, embed and
 * score-pairs embed with the public vision API and run one engine per
 * online CPU; quality runs the server's face service.
 *
 * `model` is a model's name or id (vision.h: fr_feature, mobilefacenet,
 * dlib), or "all" for the three in model order. NULL is "fused" for compare
 * and score-pairs (the server's decision score: the config's `models`
 * fused with its znorm_ statistics by fa_face_fuse, in z units) and
 * fr_feature for embed, which has no "fused". An unknown name is a usage
 * error (exit 1). Where a result has one field per model, the fields are
 * tab-separated in model order (fr_feature, mobilefacenet, dlib), so
 * `--model all` adds columns and never changes the single-model format.
 *
 * Images are refused above 40,000,000 pixels. Call from the main thread,
 * one at a time.
 */
#ifndef FACEAUTH_CLI_H
#define FACEAUTH_CLI_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fa_config;

/*
 * `compare A B`: the fused score of the largest face of A and of B (or the
 * cosine of the model named; with `all`, three tab-separated cosines),
 * printed with four decimals. Exit 0; 2 (stderr names the file) when an
 * image has no face; 1 on any other error (unreadable file, bad image,
 * missing models, usage).
 */
int fa_cli_compare(int argc, char **argv, const struct fa_config *cfg, const char *model);

/*
 * `embed FILE...` or `embed -` (paths from stdin, one per line): one line per
 * path, in input order, for the largest face:
 *   path<TAB>ok<TAB>v1,v2,...,vDIM   (L2-normalised, %.6g; DIM = the model's)
 *   path<TAB>noface
 *   path<TAB>error:<reason>
 * With `all` an ok line has three vector fields, 512, 192 and 128 values:
 *   path<TAB>ok<TAB>fr_feature<TAB>mobilefacenet<TAB>dlib
 * Exit 0 when every line was written (per-file failures are lines, not exit
 * codes); 1 on usage errors, missing models or a write error.
 */
int fa_cli_embed(int argc, char **argv, const char *model_dir, const char *model);

/*
 * `score-pairs PAIRS.tsv`: each line `pathA<TAB>pathB[<TAB>anything]`, paths
 * relative to the folder of PAIRS.tsv unless absolute. Prints, per line and
 * in order, `score<TAB>pathA<TAB>pathB` with the fused score (or the named
 * model's cosine) of the largest faces
 * (%.6f), or `NA` when either image is unreadable or has no face (the reason
 * goes to stderr). With `all`: `s1<TAB>s2<TAB>s3<TAB>pathA<TAB>pathB`
 * (fr_feature, mobilefacenet, dlib), or NA in all three. Each distinct image
 * is detected and embedded once. Exit 0; 1 on usage errors, a malformed
 * line, missing models or a write error.
 */
int fa_cli_score_pairs(int argc, char **argv, const struct fa_config *cfg, const char *model);

/*
 * `quality FILE...` or `quality -` (paths from stdin): the server's own
 * face choice and quality gates (fa_face_inspect, with the limits of the
 * config: --config, FACEAUTH_* variables) for both purposes, one line per
 * path in input order:
 *   path<TAB>AUTH<TAB>ENROLL<TAB>eye=E<TAB>sharp=S<TAB>bright=B<TAB>yaw=Y<TAB>pitch=P
 *       <TAB>roll=R<TAB>live=L
 * AUTH and ENROLL are `pass` or the first gate that refused the face for
 * authentication and for enrollment: noface, several, small, dark, bright,
 * pose, blurry (fa_face_gate_name). The measures are those of the chosen
 * face (eye distance in pixels of the original image, sharpness = variance
 * of the Laplacian of the aligned chip, brightness 0..255, angles in
 * degrees, live = fr_liveness probability of "live", which the gates do
 * not use); NA when no face was chosen. An unreadable or undecodable file
 * is `path<TAB>error:<reason>`. Runs `engines` engines in parallel
 * (default: one per CPU). Exit 0 when every line was written; 1 on usage
 * errors, missing models or a write error.
 */
int fa_cli_quality(int argc, char **argv, const struct fa_config *cfg);

/*
 * `user list CUSTOMER` (argv: "user", "list", CUSTOMER): the customer's
 * users from the database of cfg->data_dir as a table, userName, status,
 * photos, blacklisted, created (UTC), in the order of status/enroll/all.
 * Exit 0; 1 for an unknown customer, a missing database or a write error;
 * 2 for a wrong number of arguments.
 */
int fa_cli_user_list(int argc, char **argv, const struct fa_config *cfg);

/* Defaults of `models check`, relative to the repository (see below). */
#define FA_CLI_DEFAULT_REFERENCE "tests/data/model_reference.json"
#define FA_CLI_DEFAULT_ASSETS "tests/assets"

/*
 * `models check`: the sha256 of every file in model_dir/SHA256SUMS and
 * model_dir/CONVERTED.sha256, loading every model, and the reference faces
 * of `reference` (photos in `assets`) against their stored landmarks and
 * embeddings (models_cli.c). NULL reference/assets: the defaults above. A
 * relative path that does not exist from the working directory is looked
 * up beside the binary (../ and ../../ of its folder). One line per check
 * on stdout; exit 0 when all pass, 1 with the first failure on stderr.
 */
int fa_cli_models_check(const char *model_dir, const char *reference, const char *assets);

/* ---- help (help.c) ---- */

/* The overview of every command, for --help and usage errors. */
void fa_cli_usage(FILE *out);

/* The help of one command into out; 0 when cmd is not a command. */
int fa_cli_help(const char *cmd, FILE *out);

/* 1 when cmd is a command of the binary. */
int fa_cli_known(const char *cmd);

#ifdef __cplusplus
}
#endif

#endif
