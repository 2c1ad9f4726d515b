import CLibPQ
public func pqVersion() -> Int32 { PQlibVersion() }
