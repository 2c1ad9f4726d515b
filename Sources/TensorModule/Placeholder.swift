import COpenBLAS
public func blasConfig() -> String { String(cString: openblas_get_config()) }
public func qrTest() -> Int32 { var a: [Float] = [1,2,3,4]; var tau: [Float] = [0,0]; return LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, 2, 2, &a, 2, &tau) }
