import CPBTCrypto

/// SHA-256 through OpenSSL's libcrypto (EVP interface): corpus files are
/// checked against their manifest with it, and checkpoints carry one.
/// Streaming: `update` any number of times, then `finalize`.
public struct SHA256Digest: ~Copyable {
    private let context: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new(), EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not initialise SHA-256")  // only on memory exhaustion
        }
        context = ctx
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// The 32-byte digest. Ends the digest's use.
    public consuming func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return Array(out.prefix(Int(length)))
    }

    /// The 32-byte digest of `bytes`, in one call.
    public static func digest(of bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var d = SHA256Digest()
        d.update(bytes)
        return d.finalize()
    }

    /// The digest of `bytes` as 64 lowercase hex digits.
    public static func hex(of bytes: UnsafeRawBufferPointer) -> String {
        hexString(digest(of: bytes))
    }

    public static func hexString(_ digest: [UInt8]) -> String {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
