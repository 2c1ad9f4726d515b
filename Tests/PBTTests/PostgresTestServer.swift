import Foundation
import PBTPostgres
import Synchronization
import Testing

/// The PostgreSQL server the PostgreSQL tests use: `PBTWAVE_POSTGRES_URL`
/// if set, else a throwaway cluster started for the suite (initdb into a
/// temporary directory, `pg_ctl start` on a free loopback port with its
/// unix socket in that directory; as root, through `runuser -u postgres`,
/// since initdb refuses to run as root), stopped when the suite ends.
///
/// If neither works, every test that asks for the server fails with the
/// reason: these tests never skip silently.
final class PostgresTestServer: Sendable {
    /// A URL of a database the tests may create schemas in.
    let url: String
    /// The throwaway cluster's directory (nil for `PBTWAVE_POSTGRES_URL`).
    let directory: URL?
    private let binaries: URL?
    private let runAs: String?
    private let counter = Atomic<Int>(0)

    private init(url: String, directory: URL?, binaries: URL?, runAs: String?) {
        self.url = url
        self.directory = directory
        self.binaries = binaries
        self.runAs = runAs
    }

    @TaskLocal static var current: Result<PostgresTestServer, TestFailure>?

    /// The suite's server, or a test failure saying why there is none.
    static func require() throws -> PostgresTestServer {
        guard let current else {
            throw TestFailure("no PostgreSQL server: the test must be in a suite with the .postgresServer trait")
        }
        return try current.get()
    }

    static func start() -> Result<PostgresTestServer, TestFailure> {
        if let url = ProcessInfo.processInfo.environment["PBTWAVE_POSTGRES_URL"], !url.isEmpty {
            return .success(PostgresTestServer(url: url, directory: nil, binaries: nil, runAs: nil))
        }
        do {
            return .success(try startCluster())
        } catch let error as TestFailure {
            return .failure(error)
        } catch {
            return .failure(TestFailure("\(error)"))
        }
    }

    /// Debian puts the server binaries in /usr/lib/postgresql/<version>/bin.
    static func serverBinaries() throws -> URL {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() {
            let bin = root.appendingPathComponent("\(v)/bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path) { return bin }
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let bin = URL(fileURLWithPath: String(dir))
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path) { return bin }
        }
        throw TestFailure("""
            the PostgreSQL tests need a server: set PBTWAVE_POSTGRES_URL=postgres://USER@HOST:PORT/DB, or install the \
            server (apt-get install postgresql, as .ci/setup does) so they can start a throwaway cluster; no initdb found \
            in /usr/lib/postgresql/*/bin or PATH
            """)
    }

    static func startCluster() throws -> PostgresTestServer {
        let binaries = try serverBinaries()
        let fm = FileManager.default
        let directory = URL(fileURLWithPath: "/tmp/pbtwave-pg-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        var runAs: String?
        if getuid() == 0 {
            guard let user = getpwnam("postgres") else {
                throw TestFailure("running as root, and initdb refuses root: create an OS user 'postgres' (the Debian package does) or set PBTWAVE_POSTGRES_URL")
            }
            guard chown(directory.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw TestFailure("cannot hand \(directory.path) to user postgres (errno \(errno))")
            }
            runAs = "postgres"
        }
        let server = PostgresTestServer(url: "", directory: directory, binaries: binaries, runAs: runAs)
        let data = directory.appendingPathComponent("data").path
        try server.tool("initdb", ["-D", data, "-U", "pbtwave", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
        let port = try freeLoopbackPort()
        // A test cluster: durability off (fsync) for speed; nothing here outlives the suite.
        let options = "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory.path) -c fsync=off -c synchronous_commit=off "
            + "-c full_page_writes=off -c max_connections=200"
        do {
            try server.tool("pg_ctl", ["-D", data, "-l", directory.appendingPathComponent("server.log").path, "-w", "-t", "60",
                                       "-o", options, "start"])
        } catch {
            let log = (try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
            throw TestFailure("\(error)\nserver log:\n\(log)")
        }
        return PostgresTestServer(url: "postgresql://pbtwave@127.0.0.1:\(port)/postgres", directory: directory,
                                  binaries: binaries, runAs: runAs)
    }

    /// Stops the throwaway cluster and deletes it (nothing for an outside server).
    func stop() {
        guard let directory else { return }
        _ = try? tool("pg_ctl", ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs a server binary (as `runAs` if set) to completion; throws with its output if it fails.
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid`, not with
    /// `Process`: Foundation on Linux notices a child's exit through a
    /// descriptor the child inherits, and the server that `pg_ctl start`
    /// leaves running would inherit it too, so `waitUntilExit` never returns.
    @discardableResult
    func tool(_ name: String, _ arguments: [String]) throws -> String {
        let path = binaries!.appendingPathComponent(name).path
        let argv = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", path] } ?? [path]
        // Output goes to a file, not a pipe, which the server would keep open.
        let outputPath = (directory ?? URL(fileURLWithPath: "/tmp")).appendingPathComponent("\(name)-\(UInt32.random(in: 0 ... .max)).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try spawnAndWait(argv + arguments, outputPath: outputPath)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestFailure("\(name) \(arguments.joined(separator: " ")) failed (exit \(status)):\n\(text)")
        }
        return text
    }

    /// A port nobody listens on now (the kernel picks it; a tiny race with other programs remains).
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("cannot bind a loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    // MARK: - Schemas: one empty store per test

    /// A URL whose tables live in a new, empty schema (`search_path`), so
    /// every store a test makes starts empty, even on a shared server.
    /// `applicationName` lets a test find the store's server processes.
    func freshSchemaURL(applicationName: String? = nil) throws -> (url: String, schema: String) {
        let schema = "pbttest_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)_\(UInt16.random(in: 0 ... .max))"
        let admin = try PostgresConnection(url: url)
        try admin.exec("CREATE SCHEMA \(schema)")
        var url = self.url + (self.url.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(schema)"
        if let applicationName { url += "&application_name=\(applicationName)" }
        return (url, schema)
    }

    func dropSchemas(_ schemas: [String]) {
        guard let admin = try? PostgresConnection(url: url) else { return }
        for s in schemas { try? admin.exec("DROP SCHEMA IF EXISTS \(s) CASCADE") }
    }
}

/// Runs `argv` with standard input from /dev/null and standard output and
/// error to `outputPath`; returns its exit status (128 + n if killed by signal n).
func spawnAndWait(_ argv: [String], outputPath: String) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let cArguments = argv.map { strdup($0) } + [nil]
    defer { for p in cArguments { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
    guard rc == 0 else { throw TestFailure("cannot start \(argv[0]): errno \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw TestFailure("waitpid failed: errno \(errno)") }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// Starts the suite's PostgreSQL server before its tests and stops it after.
struct PostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let started = PostgresTestServer.start()
        defer { if case .success(let server) = started { server.stop() } }
        try await PostgresTestServer.$current.withValue(started) { try await function() }
    }
}

extension Trait where Self == PostgresServerTrait {
    static var postgresServer: Self { PostgresServerTrait() }
}

/// Fresh stores on the test server, in schemas dropped by `cleanup()`.
final class PostgresTestStores {
    let server: PostgresTestServer
    private(set) var schemas: [String] = []

    init() throws { server = try PostgresTestServer.require() }

    func makeStore(applicationName: String? = nil, notice: (@Sendable (String) -> Void)? = nil) throws -> PostgresTrialStore {
        let (url, schema) = try server.freshSchemaURL(applicationName: applicationName)
        schemas.append(schema)
        return try PostgresTrialStore(url: url, notice: notice)
    }

    /// A URL for a new empty store (for child processes).
    func makeURL() throws -> String {
        let (url, schema) = try server.freshSchemaURL()
        schemas.append(schema)
        return url
    }

    func cleanup() { server.dropSchemas(schemas) }
}
