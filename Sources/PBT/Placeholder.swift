import CSQLite
import SeededRNG
public func sqliteVersion() -> String { String(cString: sqlite3_libversion()) }
