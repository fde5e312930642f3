/*
 * cli.h - the command line of the hfmirror daemon.
 *
 * hfm_cli_main() parses argv (the program may be invoked as `hfmirror` or
 * as `olah-cli`, with Olah's command lines), builds the sources, runs the
 * server until SIGINT/SIGTERM and returns the process exit status:
 * 0 clean stop, 1 runtime error, 2 usage error.
 */
#ifndef HFM_CLI_H
#define HFM_CLI_H

int hfm_cli_main(int argc, char **argv);

/* `hfmirror token …` and `hfmirror grant …` (cmd_token.c): argv[0] is the command. */
int hfm_token_main(const char *prog, int argc, char **argv);
int hfm_grant_main(const char *prog, int argc, char **argv);

#endif
