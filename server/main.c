/* main.c - the hfmirror daemon; everything is in the server library (hfmserver). */
#include "hfm/cli.h"

int main(int argc, char **argv)
{
	return hfm_cli_main(argc, argv);
}
