import PBTFileSupport
import Foundation
import Testing

/// JSON files a person writes: a key given twice in one object is found
/// (the decoders keep one silently), wherever it is, and nothing else is;
/// so is a comma before an end (Foundation's decoder reads `[1, 2,]`).
@Suite struct JSONStrictnessProblemTests {
    static func first(_ text: String) -> JSONStrictnessProblem? { JSONStrictnessProblem.first(in: Data(text.utf8)) }

    @Test func duplicatesAreFoundWithWhereTheyAre() {
        #expect(Self.first(#"{"lr": 1, "lr": 2}"#) == JSONStrictnessProblem(key: "lr", path: ""))
        #expect(Self.first(#"{"model": {"a": 1, "b": {"c": 2}, "a": 3}}"#) == JSONStrictnessProblem(key: "a", path: "model"))
        #expect(Self.first(#"{"points": [{"step": 0}, {"step": 1, "lr": 2, "lr": 3}]}"#) == JSONStrictnessProblem(key: "lr", path: "points[1]"))
        #expect(Self.first(#"[[{}], [{"x": [1, {"y": 1, "y": 1}]}]]"#) == JSONStrictnessProblem(key: "y", path: "[1][0].x[1]"))
        #expect(Self.first(#"{"l\u0072": 1, "lr": 2}"#)?.key == "lr", "escapes decoded")
        #expect(Self.first(#"{"lr": 1, "lr": 2}"#)?.description.contains("key 'lr' appears twice in the top-level object") == true)
    }

    @Test func nothingElseIsADuplicate() {
        #expect(Self.first(#"{"a": {"x": 1}, "b": {"x": 2}, "x": 3}"#) == nil, "the same key in different objects")
        #expect(Self.first(#"[{"x": 1}, {"x": 2}]"#) == nil)
        #expect(Self.first(#"{"a": "x", "b": "x", "c": ["a", "a"]}"#) == nil, "values are not keys")
        #expect(Self.first(#"{"a": "{\"a\": 1, \"a\": 2}", "b": "]}"}"#) == nil, "braces and quotes inside strings")
        #expect(Self.first(#"{"a": 1, "A": 2}"#) == nil, "case matters")
        #expect(Self.first("") == nil && Self.first("{") == nil && Self.first(#"{"a": "#) == nil && Self.first("]]}") == nil,
                "not JSON: left to the decoder")
    }

    /// Found by a helper: `{"dilations": [1, 2,],}` was read as if the
    /// commas were not there; Python's json refuses it.
    @Test func aTrailingCommaIsFoundWithWhereItIs() {
        #expect(Self.first("[1, 2,]") == JSONStrictnessProblem(.trailingComma, path: ""))
        #expect(Self.first(#"{"a": 1,}"#) == JSONStrictnessProblem(.trailingComma, path: ""))
        #expect(Self.first(#"{"model": {"dilations": [1, 2 ,\#n ]}}"#) == JSONStrictnessProblem(.trailingComma, path: "model.dilations"))
        #expect(Self.first(#"{"points": [{"step": 0}, {"lr": 1,\#t}]}"#) == JSONStrictnessProblem(.trailingComma, path: "points[1]"))
        #expect(Self.first("[1,]")?.description == "a comma ends the top-level object or list with nothing after it, which JSON does not allow: remove it")
        #expect(Self.first("[1,]")?.key == nil)
        #expect(Self.first(#"{"a": ",]", "b": [",}"], "c": [1, 2]}"#) == nil, "commas inside strings")
        #expect(Self.first(#"{"a": [1, 2], "b": {}}"#) == nil && Self.first("[]") == nil && Self.first("{}") == nil)
        #expect(JSONStrictnessProblem.first(in: Data("[1, 2,]".utf8), trailingCommas: true) == nil, "JSON5 allows them")
        #expect(JSONStrictnessProblem.first(in: Data(#"{"a": 1, "a": 2,}"#.utf8), trailingCommas: true)?.key == "a")
    }

    /// A non-zero number below a Double's range reads as 0 in every
    /// decoder; a file that says 1e-400 meant something else.
    @Test func aNumberThatReadsAsZeroIsFound() {
        #expect(Self.first(#"{"lr": {"uniform": [1e-400, 1]}}"#) == JSONStrictnessProblem(.underflow("1e-400"), path: "lr.uniform[0]"))
        #expect(Self.first("[0, -2.5E-999]") == JSONStrictnessProblem(.underflow("-2.5E-999"), path: "[1]"))
        #expect(Self.first(#"{"a": 0.000e-999, "b": -0, "c": 0.0, "d": 5e-324, "e": 1e-300, "f": "1e-400"}"#) == nil,
                "zeros written as zeros, the smallest subnormal, and strings pass")
        #expect(Self.first("1e-400")?.description
                == "the number 1e-400 is too small for a 64-bit float (the smallest is about 5e-324) and would be read as 0: write 0, or a larger value")
        #expect(JSONStrictnessProblem.first(in: Data("[1e-400]".utf8), underflow: false) == nil)
    }
}
