#include <onnxruntime_c_api.h>

// The C API is a table of function pointers fetched once for the header's version;
// a library newer than the headers still serves it (the API is versioned).
static inline const OrtApi *cort_api(void) {
    const OrtApiBase *base = OrtGetApiBase();
    return base ? base->GetApi(ORT_API_VERSION) : 0;
}
