import CSndFile
import CSampleRate
public func sndVersion() -> String { String(cString: sf_version_string()) + String(cString: src_get_version()) }
