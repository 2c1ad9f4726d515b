/// Named views into one flat allocation.
///
/// A model's parameters, their gradients and Adam's two moments are four
/// arenas with the same layout, so zeroing the gradients, an Adam step, or
/// copying a whole model (PBT's exploit) is one pass over one buffer.
public struct ArenaLayout: Sendable, Hashable, Codable {
    /// One named tensor inside the arena.
    public struct Entry: Sendable, Hashable, Codable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public private(set) var entries: [Entry] = []
    /// Total floats; every entry starts at a multiple of 16 floats (64 bytes).
    public private(set) var count: Int = 0
    /// Where each name is in `entries`: a layout of thousands of layers is
    /// built and searched in linear time, not quadratic.
    private var positions: [String: Int] = [:]

    private enum CodingKeys: String, CodingKey { case entries, count }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entries = try container.decode([Entry].self, forKey: .entries)
        count = try container.decode(Int.self, forKey: .count)
        positions = Dictionary(entries.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Appends a tensor of `shape` and returns its offset.
    @discardableResult
    public mutating func append(_ name: String, shape: [Int]) -> Int {
        precondition(positions[name] == nil, "arena already has an entry named \(name)")
        let offset = (count + 15) / 16 * 16
        positions[name] = entries.count
        entries.append(Entry(name: name, shape: shape, offset: offset))
        count = offset + shape.reduce(1, *)
        return offset
    }

    public func entry(_ name: String) -> Entry? { positions[name].map { entries[$0] } }
}

/// A flat buffer laid out by an `ArenaLayout`.
public final class ParameterArena {
    public let layout: ArenaLayout
    public let storage: Tensor

    public init(layout: ArenaLayout) {
        self.layout = layout
        self.storage = Tensor(shape: [layout.count])
    }

    /// The first float of `entry`. Valid while the arena lives.
    public func pointer(_ entry: ArenaLayout.Entry) -> UnsafeMutablePointer<Float> {
        storage.baseAddress + entry.offset
    }

    public var baseAddress: UnsafeMutablePointer<Float> { storage.baseAddress }
    public var count: Int { layout.count }

    public func zero() { storage.zero() }

    /// Copies every float of `other`, which must have the same layout.
    public func copy(from other: ParameterArena) {
        precondition(other.layout == layout, "arena copy needs identical layouts")
        storage.copy(from: other.storage)
    }
}
