#if canImport(Glibc)
import Glibc
#endif

/// Owned, contiguous, 64-byte aligned `Float` storage with a shape.
///
/// The tensor owns its memory and frees it in `deinit`. Kernels in this module
/// are free functions over pointers (outputs first, then inputs, then sizes, as
/// in llm.c); a `Tensor` hands out its pointer through `withUnsafe…` for casual
/// use, and through `baseAddress` for models that hold many tensors and call
/// kernels in a hot loop — `baseAddress` is valid for as long as the tensor
/// lives.
///
/// A tensor is not `Sendable`: each worker thread builds and owns its own.
public final class Tensor {
    /// The extent of each dimension, outermost first (row-major).
    public let shape: [Int]
    /// The number of elements, the product of `shape`.
    public let count: Int
    /// The first element. Valid while `self` is alive.
    public let baseAddress: UnsafeMutablePointer<Float>

    /// A zero-filled tensor of the given shape. Every extent must be ≥ 0.
    ///
    /// Tensors of 2 MiB or more are placed on 2 MiB boundaries and offered to
    /// the kernel for transparent huge pages (`madvise`): a training step
    /// walks ~100 MB of activations, and 4 KiB pages cost measurable TLB
    /// misses there.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative extent")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = Self.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        baseAddress = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        baseAddress.initialize(repeating: 0, count: max(count, 1))
    }

    static let hugePage = 2 << 20

    /// Memory for activations (`deallocate()` frees it): 64-byte aligned,
    /// and from 2 MiB on, on 2 MiB boundaries and offered for transparent
    /// huge pages (see `init(shape:)`; `BF16Buffer` allocates the same way).
    static func allocate(byteCount bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= hugePage else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        let rounded = (bytes + hugePage - 1) / hugePage * hugePage
        let raw = UnsafeMutableRawPointer.allocate(byteCount: rounded, alignment: hugePage)
        _ = madvise(raw, rounded, MADV_HUGEPAGE)
        return raw
    }

    /// A tensor holding `values` in row-major order; `values.count` must equal
    /// the product of `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "Tensor shape \(shape) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { baseAddress.update(from: $0.baseAddress!, count: count) }
    }

    deinit {
        baseAddress.deinitialize(count: max(count, 1))
        baseAddress.deallocate()
    }

    @inlinable
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: baseAddress, count: count))
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: baseAddress, count: count))
    }

    /// Element `i` of the flattened tensor. Bounds are checked.
    public subscript(i: Int) -> Float {
        get {
            precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)")
            return baseAddress[i]
        }
        set {
            precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)")
            baseAddress[i] = newValue
        }
    }

    /// A copy of the elements, row-major.
    public var array: [Float] { Array(UnsafeBufferPointer(start: baseAddress, count: count)) }

    public func fill(_ value: Float) { baseAddress.update(repeating: value, count: count) }

    public func zero() { fill(0) }

    /// Copies every element of `other`, which must have the same element count.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy needs equal counts: \(other.count) into \(count)")
        baseAddress.update(from: other.baseAddress, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(shape: \(shape))" }
}
