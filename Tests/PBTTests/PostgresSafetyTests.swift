import Foundation
import PBTPostgres
import Synchronization
import Testing

@testable import PBT

/// A TCP relay on loopback between a client and `upstream`, which can
/// freeze: it then accepts connections and reads nothing and answers
/// nothing, as a server that stops answering does (a frozen host, a
/// partition). With no upstream it is a socket that accepts and never
/// answers.
final class FreezingRelay: Sendable {
    let port: UInt16
    private let listener: Int32
    private let upstreamPort: UInt16?
    private let state = Mutex((frozen: false, stopped: false, sockets: [Int32]()))

    init(upstreamPort: UInt16?) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard fd >= 0, bound == 0, listen(fd, 64) == 0 else { throw TestFailure("cannot listen on loopback") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fd, $0, &length) } }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return a
    }

    var frozen: Bool {
        get { state.withLock { $0.frozen } }
        set { state.withLock { $0.frozen = newValue } }
    }

    /// Closes the listener and every relayed connection.
    func stop() {
        let sockets = state.withLock { s -> [Int32] in s.stopped = true; return s.sockets }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for s in sockets { shutdown(s, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let upstreamPort else { state.withLock { $0.sockets.append(client) }; continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard connected == 0 else { close(client); close(server); continue }
            state.withLock { $0.sockets += [client, server] }
            for (from, to) in [(client, server), (server, client)] { Thread { [self] in relay(from, to) }.start() }
        }
    }

    private func relay(_ from: Int32, _ to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if state.withLock({ $0.stopped }) { break }
            if frozen { usleep(10_000); continue }
            var fds = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
            guard poll(&fds, 1, 20) >= 0 else { break }
            guard fds.revents != 0 else { continue }
            let n = read(from, &buffer, buffer.count)
            // send with MSG_NOSIGNAL: a peer that has gone must not SIGPIPE the test process.
            guard n > 0, buffer.withUnsafeBytes({ send(to, $0.baseAddress!, n, Int32(MSG_NOSIGNAL)) }) == n else { break }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
    }
}

/// Issue 15: a PostgreSQL server that accepts and never replies does not
/// block a worker for ever, and work goes on once it answers again.
@Suite(.postgresServer) struct PostgresHangTests {
    static let quick = PostgresTimeouts(connectSeconds: 2, replySeconds: 1)

    /// `url` with its host and port replaced by the relay's.
    static func through(_ relay: FreezingRelay, _ url: String) throws -> String {
        guard let at = url.firstIndex(of: "@"), let slash = url[at...].firstIndex(of: "/") else { throw TestFailure("unexpected URL \(url)") }
        return String(url[...at]) + "127.0.0.1:\(relay.port)" + String(url[slash...])
    }

    static func upstreamPort(_ url: String) throws -> UInt16 {
        guard let at = url.firstIndex(of: "@"), let slash = url[at...].firstIndex(of: "/"),
              let colon = url[at..<slash].lastIndex(of: ":"), let port = UInt16(url[url.index(after: colon)..<slash])
        else { throw TestFailure("no port in \(url)") }
        return port
    }

    /// A socket that accepts and never answers: connecting gives up after
    /// the connect timeout, with a message.
    @Test(.timeLimit(.minutes(1))) func aServerThatNeverAnswersIsGivenUp() throws {
        let relay = try FreezingRelay(upstreamPort: nil)
        defer { relay.stop() }
        let start = ContinuousClock.now
        #expect(throws: PostgresError.self) {
            try PostgresTrialStore(url: "postgresql://pbtwave@127.0.0.1:\(relay.port)/postgres", timeouts: Self.quick)
        }
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    /// A server that stops answering mid-run, then comes back: the read
    /// that was waiting gives the connection up after the reply timeout,
    /// and a retry on a new connection succeeds once the server answers.
    @Test(.timeLimit(.minutes(1))) func aFrozenServerIsRecoveredFrom() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let url = try stores.makeURL()
        let relay = try FreezingRelay(upstreamPort: try Self.upstreamPort(url))
        defer { relay.stop() }
        let store = try PostgresTrialStore(url: try Self.through(relay, url), timeouts: Self.quick)
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: TrialStoreConformance.state(1),
                                      trials: [TrialStoreConformance.planned(1)], now: 0)
        relay.frozen = true
        let thaw = DispatchSemaphore(value: 0)
        Thread {
            Thread.sleep(forTimeInterval: 3)
            relay.frozen = false
            thaw.signal()
        }.start()
        let start = ContinuousClock.now
        let claimed = try store.claim(runID: run.id, workerID: "w", now: 1, leaseUntil: 100)
        let waited = ContinuousClock.now - start
        thaw.wait()
        #expect(claimed?.id == 1, "the claim went through once the server answered")
        #expect(waited >= .seconds(1), "it waited for the frozen server (\(waited))")
        #expect(waited < .seconds(30))
        #expect(try store.trial(runID: run.id, id: 1)?.attempt == 1, "claimed exactly once")
    }
}

/// Issue 15, item 2 on PostgreSQL: two runs given one run directory. Each
/// has its own namespace, and the second is refused before it writes
/// anything (before: both wrote `checkpoints/trial-N.A.ckpt`, and run A's
/// best checkpoint ended up holding run B's weights).
@Suite(.postgresServer) struct PostgresRunDirectoryTests {
    @Test func twoRunsCannotShareARunDirectory() throws {
        let stores = try PostgresTestStores()
        defer { stores.cleanup() }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let url = try stores.makeURL()
        let runDir = dir.url.appendingPathComponent("shared").path
        let a = try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", url, "--run", "a"]))
        #expect(a.status == 0, "\(a.stderr)")
        let before = try RunDirectorySafetyTests.snapshot(URL(fileURLWithPath: runDir))
        let b = try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", url, "--run", "b", "--seed", "9"]))
        #expect(b.status != 0 && b.stderr.contains("belongs to another run"), "\(b.stderr)")
        #expect(try RunDirectorySafetyTests.snapshot(URL(fileURLWithPath: runDir)) == before, "nothing in the directory changed")
        // The same run name in another database (a second store): refused too.
        let other = try stores.makeURL()
        let c = try runPBTWave(RunDirectorySafetyTests.toyRun(runDir, ["--store", other, "--run", "a"]))
        #expect(c.status != 0 && c.stderr.contains("cannot be that run's"), "\(c.stderr)")
        // A worker given that directory for run b is refused as well.
        _ = try runPBTWave(RunDirectorySafetyTests.toyRun(dir.url.appendingPathComponent("b").path,
                                                          ["--store", url, "--run", "b", "--local-workers", "0"]))
        let worker = try runPBTWave(["worker", "--store", url, "--run", "b", "--run-dir", runDir])
        #expect(worker.status != 0 && worker.stderr.contains("belongs to another run"), "\(worker.stderr)")
    }
}
