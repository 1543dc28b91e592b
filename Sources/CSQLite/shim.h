#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast macro Swift cannot import; expose it as a function.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
