// OpenBLAS's CBLAS (plus its extensions: openblas_get_config,
// openblas_set_num_threads) and LAPACKE. pkg-config `openblas` puts the
// OpenBLAS include directory first, so <cblas.h> is OpenBLAS's own header.
#include <cblas.h>
#include <lapacke.h>
