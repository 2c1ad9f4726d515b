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

    public init() {}

    /// Appends a tensor of `shape` and returns its offset.
    @discardableResult
    public mutating func append(_ name: String, shape: [Int]) -> Int {
        precondition(!entries.contains { $0.name == name }, "arena already has an entry named \(name)")
        let offset = (count + 15) / 16 * 16
        entries.append(Entry(name: name, shape: shape, offset: offset))
        count = offset + shape.reduce(1, *)
        return offset
    }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }
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
