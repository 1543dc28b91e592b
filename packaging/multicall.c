/* One executable for vigild and vigilctl (a multi-call binary, as busybox): the name it is run
 * under picks the program. Both share the statically linked Swift runtime, Foundation and
 * VigilCore, so the package carries them once (issue 19.3: two 61 MB binaries before).
 * SwiftPM compiles each executable target's top-level code as <module>_main (that is how test
 * targets link them); packaging/link-vigil links both modules' objects with this main. */
#include <string.h>

int vigild_main(int argc, char **argv);
int vigilctl_main(int argc, char **argv);

int main(int argc, char **argv) {
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    const char *name = slash ? slash + 1 : (argc > 0 ? argv[0] : "");
    if (strcmp(name, "vigilctl") == 0) return vigilctl_main(argc, argv);
    return vigild_main(argc, argv);
}
