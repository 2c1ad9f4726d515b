/// `s` quoted for a POSIX shell where it needs quoting, for commands that
/// messages suggest (a path with a space must paste as one word).
public func shellQuoted(_ s: String) -> String {
    let safe = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@%+,".contains($0) }
    return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
