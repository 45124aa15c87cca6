/*
 * cli.h — the benchmark subcommands of the faceauth binary (src/cli/).
 *
 * main.c dispatches `faceauth compare|embed|score-pairs ...` here. Each
 * function takes the subcommand's own argv (argv[0] is the subcommand name),
 * the folder holding the ONNX models, writes results to stdout and messages
 * to stderr, and returns the process exit status. They use only the public
 * vision API; embed and score-pairs run one engine per online CPU.
 * Images are refused above 40,000,000 pixels. Call from the main thread,
 * one at a time.
 */
#ifndef FACEAUTH_CLI_H
#define FACEAUTH_CLI_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * `compare A B`: the cosine of the largest face of A and of B, printed with
 * four decimals. Exit 0; 2 (stderr names the file) when an image has no face;
 * 1 on any other error (unreadable file, bad image, missing models, usage).
 */
int fa_cli_compare(int argc, char **argv, const char *model_dir);

/*
 * `embed FILE...` or `embed -` (paths from stdin, one per line): one line per
 * path, in input order, for the largest face:
 *   path<TAB>ok<TAB>v1,v2,...,v512   (L2-normalised, %.6g)
 *   path<TAB>noface
 *   path<TAB>error:<reason>
 * Exit 0 when every line was written (per-file failures are lines, not exit
 * codes); 1 on usage errors, missing models or a write error.
 */
int fa_cli_embed(int argc, char **argv, const char *model_dir);

/*
 * `score-pairs PAIRS.tsv`: each line `pathA<TAB>pathB[<TAB>anything]`, paths
 * relative to the folder of PAIRS.tsv unless absolute. Prints, per line and
 * in order, `score<TAB>pathA<TAB>pathB` with the cosine of the largest faces
 * (%.6f), or `NA` when either image is unreadable or has no face (the reason
 * goes to stderr). Each distinct image is embedded once. Exit 0; 1 on usage
 * errors, a malformed line, missing models or a write error.
 */
int fa_cli_score_pairs(int argc, char **argv, const char *model_dir);

#ifdef __cplusplus
}
#endif

#endif
