// PDF text extraction through poppler-glib (Debian: libpoppler-glib-dev).
#include <poppler.h>
