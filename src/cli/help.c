/*
 * help.c — `faceauth --help`, `faceauth help CMD` and `faceauth CMD --help`:
 * one table of every subcommand with its synopsis and help text, so the
 * overview and the per-command pages cannot disagree.
 */
#include "faceauth/cli.h"

#include <stdio.h>
#include <string.h>

struct help_entry {
    const char *name;
    const char *synopsis; /* after "faceauth " */
    const char *text;
};

static const struct help_entry kHelp[] = {
    {"serve", "serve [--config FILE] [--port N] [--listen ADDR] [--data DIR] [--models DIR]",
     "Run the HTTP server until SIGTERM or SIGINT, then finish the requests in\n"
     "flight. Settings: built-in defaults < --config FILE < FACEAUTH_<KEY>\n"
     "environment variables < flags (see config/faceauth.conf). Prints\n"
     "\"faceauth VERSION listening on http://ADDR:PORT ...\" once it serves,\n"
     "then one access-log line per request. GET /metrics serves Prometheus\n"
     "metrics to loopback clients, or to anyone with metrics_token.\n"},
    {"customer", "customer add|passwd|unlock|callback-secret NAME [--password-file F] [--data DIR]",
     "add: create the customer NAME (a client application of the API).\n"
     "passwd: set a new password and revoke every access token of NAME.\n"
     "The password is the first line of --password-file F, else of stdin.\n"
     "unlock: clear NAME's login locks and its users' attempt locks.\n"
     "callback-secret: a new secret that signs NAME's callbacks, printed once\n"
     "(running it again rotates it).\n"
     "Exit 1 when the name exists (add), is unknown (passwd) or is not\n"
     "1-64 characters of A-Z a-z 0-9 . _ @ -.\n"},
    {"user", "user list CUSTOMER [--data DIR]",
     "list: a table of the customer's users, last enrollment change first (the\n"
     "order of status/enroll/all): userName, status (draft, success, failure),\n"
     "photos (enrolled plus learned), blacklisted (yes/no) and created (UTC).\n"
     "Reads the database of --data directly; the server may be running.\n"
     "Exit 1 for an unknown customer or a missing database.\n"},
    {"models", "models check [--models DIR] [--reference FILE] [--assets DIR]",
     "check: hash every model file against DIR/SHA256SUMS and\n"
     "DIR/CONVERTED.sha256, load every model, and run the reference faces of\n"
     "FILE (default tests/data/model_reference.json; photos from --assets,\n"
     "default tests/assets): landmarks within 0.5 px, MobileFaceNet and dlib\n"
     "embeddings within 1e-3 of vectors computed independently. Relative\n"
     "default paths not found from the working directory are looked up beside\n"
     "the binary (../ and ../../ from its folder), so build/faceauth finds the\n"
     "repository's. One line per check; exit 1 with the first reason when\n"
     "any fails, 0 when all pass.\n"},
    {"compare", "compare A.jpg B.jpg [--models DIR] [--config FILE] [--model fused|NAME|all]",
     "The server's decision score of the largest face of A and of B: the\n"
     "config's models fused, in z units (four decimals). --model NAME gives\n"
     "that model's cosine instead, --model all the three cosines, tab-\n"
     "separated. Exit 2 when an image has no face.\n"},
    {"embed", "embed FILE...|- [--models DIR] [--model NAME|all]",
     "One line per image: path<TAB>ok<TAB>v1,v2,... (the L2-normalised\n"
     "embedding of the largest face), path<TAB>noface or path<TAB>error:REASON.\n"
     "\"-\" reads paths from stdin, one per line. Uses every core.\n"},
    {"score-pairs", "score-pairs PAIRS.tsv [--models DIR] [--config FILE] [--model fused|NAME|all]",
     "For each line pathA<TAB>pathB of PAIRS.tsv (relative to its folder):\n"
     "score<TAB>pathA<TAB>pathB, or NA when an image is unreadable or has no\n"
     "face. The score is the fused one of compare, or a model's cosine with\n"
     "--model NAME (all: three columns). Uses every core.\n"},
    {"quality", "quality FILE...|- [--models DIR] [--config FILE]",
     "The server's face choice and quality gates on each image, with the\n"
     "config's limits: path<TAB>AUTH<TAB>ENROLL<TAB>eye=..<TAB>sharp=..<TAB>\n"
     "bright=..<TAB>yaw=..<TAB>pitch=..<TAB>roll=..<TAB>live=.., where AUTH\n"
     "and ENROLL are pass or the refusing gate.\n"},
    {"config-defaults", "config-defaults",
     "Print the commented config file of the built-in defaults: every key with\n"
     "its help, the values it takes and its default (config/faceauth.conf is\n"
     "this output). Ignores --config and FACEAUTH_* variables.\n"},
    {"help", "help [COMMAND]", "This overview, or the help of one command.\n"},
};

#define N_HELP (sizeof kHelp / sizeof kHelp[0])

void fa_cli_usage(FILE *out)
{
    fprintf(out, "faceauth %s, a self-hosted face-authentication server.\n\nusage:\n",
            FA_VERSION);
    for (size_t i = 0; i < N_HELP; i++)
        fprintf(out, "  faceauth %s\n", kHelp[i].synopsis);
    fprintf(out, "  faceauth --version\n\n"
                 "Every command also takes --config FILE, --data DIR and --database URL\n"
                 "(sqlite:PATH or postgresql://...), so the CLI and the server agree on the\n"
                 "same database. --model: fr_feature (default),\n"
                 "mobilefacenet, dlib or all. 'faceauth help COMMAND' or\n"
                 "'faceauth COMMAND --help' explains one command.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error (unknown command or\n"
                 "option, missing argument; compare also when an image has no face).\n");
}

int fa_cli_help(const char *cmd, FILE *out)
{
    for (size_t i = 0; i < N_HELP; i++) {
        if (strcmp(cmd, kHelp[i].name) != 0)
            continue;
        fprintf(out, "usage: faceauth %s\n\n%s", kHelp[i].synopsis, kHelp[i].text);
        return 1;
    }
    return 0;
}

int fa_cli_known(const char *cmd)
{
    for (size_t i = 0; i < N_HELP; i++)
        if (strcmp(cmd, kHelp[i].name) == 0)
            return 1;
    return 0;
}
