/* main.c - placeholder entry point, replaced by the CLI in cli.c. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("hfmirror %s\n", HFM_VERSION);
		return 0;
	}
	fprintf(stderr, "hfmirror: not implemented yet\n");
	return 2;
}
