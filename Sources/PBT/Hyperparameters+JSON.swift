/// The store keeps hyperparameters as a flat JSON object with sorted keys,
/// e.g. `{"lr":0.0012,"optimizer":"adam"}`. Every report reads a window of
/// trials, so this small hand-written codec (no Foundation coders) keeps the
/// controller's per-trial cost in microseconds. Numbers use Swift's shortest
/// round-tripping form, so values survive the store bit-exactly.
extension Hyperparameters {
    public var jsonText: String {
        "{" + names.map { name in
            switch values[name]! {
            case .number(let x): return "\"\(name)\":" + (x.isFinite ? x.description : "null")
            case .category(let c): return "\"\(name)\":\"\(c)\""
            }
        }.joined(separator: ",") + "}"
    }

    /// Parses the flat object written by `jsonText` (names and categories
    /// never contain quotes or backslashes; `validate()` guarantees it).
    public init(jsonText text: String) throws(PBTStoreError) {
        var values: [String: HyperparameterValue] = [:]
        var s = Substring(text)
        func fail() -> PBTStoreError { .malformedRecord("hyperparameters are not a flat JSON object: \(text)") }
        func skipSpace() { s = s.drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }) }
        func quoted() throws(PBTStoreError) -> String {
            guard s.first == "\"" else { throw fail() }
            s = s.dropFirst()
            guard let end = s.firstIndex(of: "\"") else { throw fail() }
            let body = String(s[..<end])
            s = s[s.index(after: end)...]
            return body
        }
        skipSpace()
        guard s.first == "{" else { throw fail() }
        s = s.dropFirst()
        skipSpace()
        if s.first == "}" {
            s = s.dropFirst()
        } else {
            while true {
                skipSpace()
                let name = try quoted()
                skipSpace()
                guard s.first == ":" else { throw fail() }
                s = s.dropFirst()
                skipSpace()
                if s.first == "\"" {
                    values[name] = .category(try quoted())
                } else {
                    let token = s.prefix(while: { $0 != "," && $0 != "}" && $0 != " " })
                    s = s[token.endIndex...]
                    guard let x = Double(token) else { throw fail() }
                    values[name] = .number(x)
                }
                skipSpace()
                if s.first == "," { s = s.dropFirst(); continue }
                guard s.first == "}" else { throw fail() }
                s = s.dropFirst()
                break
            }
        }
        skipSpace()
        guard s.isEmpty else { throw fail() }
        self.init(values)
    }
}
