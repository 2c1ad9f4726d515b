import PBTWaveTensor

extension Tensor {
    convenience init(_ values: [Float]) { self.init(shape: [values.count], values: values) }
}

/// Every kernel variant this CPU runs (the instruction sets from CPUID, and
/// the OpenBLAS path): each kernel test runs once per variant.
let variants: [KernelVariant] = Kernels.supported

extension KernelVariant {
    var kernels: Kernels { try! Kernels(self) }  // only supported variants are listed
}
