import Foundation

/// A minimal SVG writer: elements as strings, with every piece of text and
/// every attribute value escaped, so the output is well-formed XML whatever
/// the method names or labels contain.
public enum SVG {
    /// Escapes `& < > " '` for XML text and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// `<name a="v" …/>` or `<name a="v" …>content</name>`. `content` is
    /// inserted as is (already markup); attribute values are escaped.
    public static func element(_ name: String, _ attributes: [(String, String)], content: String? = nil) -> String {
        var out = "<" + name
        for (key, value) in attributes {
            out += " \(key)=\"\(escape(value))\""
        }
        guard let content else { return out + "/>" }
        return out + ">" + content + "</" + name + ">"
    }

    /// A coordinate with one decimal, without a trailing ".0" or "-0".
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 10).rounded() / 10
        if rounded == rounded.rounded() {
            let integer = Int(rounded)
            return String(integer == 0 ? 0 : integer)
        }
        return String(format: "%.1f", rounded)
    }

    public enum Anchor: String {
        case start, middle, end
    }

    /// A text element. `rotation` in degrees about (x, y).
    public static func text(
        _ string: String, x: Double, y: Double, anchor: Anchor = .start, size: Double = 12,
        weight: String? = nil, fill: String = "#222222", rotation: Double? = nil
    ) -> String {
        var attributes: [(String, String)] = [("x", number(x)), ("y", number(y))]
        if anchor != .start { attributes.append(("text-anchor", anchor.rawValue)) }
        attributes.append(("font-size", number(size)))
        if let weight { attributes.append(("font-weight", weight)) }
        attributes.append(("fill", fill))
        if let rotation {
            attributes.append(("transform", "rotate(\(number(rotation)) \(number(x)) \(number(y)))"))
        }
        return element("text", attributes, content: escape(string))
    }

    public static func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String,
                            width: Double = 1, dash: String? = nil, opacity: Double? = nil) -> String {
        var attributes: [(String, String)] = [
            ("x1", number(x1)), ("y1", number(y1)), ("x2", number(x2)), ("y2", number(y2)),
            ("stroke", stroke), ("stroke-width", number(width)),
        ]
        if let dash { attributes.append(("stroke-dasharray", dash)) }
        if let opacity { attributes.append(("stroke-opacity", String(format: "%.2f", opacity))) }
        return element("line", attributes)
    }

    /// A path through `points` ("M x y L x y …"); empty for no points.
    public static func pathData(_ points: [(Double, Double)], closed: Bool = false) -> String {
        guard let first = points.first else { return "" }
        var data = "M\(number(first.0)) \(number(first.1))"
        for point in points.dropFirst() {
            data += "L\(number(point.0)) \(number(point.1))"
        }
        return closed ? data + "Z" : data
    }

    /// Approximate width of `text` in DejaVu Sans / Helvetica at `size` px,
    /// for layout (legends, label spacing); errs on the wide side.
    public static func textWidth(_ text: String, size: Double) -> Double {
        Double(text.count) * size * 0.62
    }

    /// The standalone-file form of an inline SVG: an XML declaration first.
    public static func document(_ svg: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n"
    }
}
