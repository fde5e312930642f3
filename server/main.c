/* main.c - the hfmirror daemon; everything is in the core library. */
#include "hfm/cli.h"

int main(int argc, char **argv)
{
	return hfm_cli_main(argc, argv);
}
