import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A program started by `posix_spawn` (no shell) as the leader of a new
/// process group, so that it and everything it starts can be signalled at
/// once (`kill(-pid, …)`). Its standard input is /dev/null, its standard
/// output and error go (appended, interleaved) to one log file, every signal
/// starts with its default action and none is blocked, and it inherits no
/// file descriptor beyond 0–2.
///
/// The process is not reaped until `reap()`: between `waitForExit()` and
/// `reap()` it is a zombie that keeps its pid and process group id, so a
/// signal sent to the group in that window can never reach a process that
/// reused the id.
struct SpawnedProcess {
    let pid: pid_t

    /// How a reaped process ended.
    enum Termination: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    /// Starts `executable` (a path) with `arguments` (argv[0] first) and
    /// exactly `environment` ("NAME=value" strings). Throws the errno of a
    /// failed start (ENOENT, EACCES, ENOEXEC, …).
    static func spawn(executable: String, arguments: [String], environment: [String], log: String) throws(SpawnError) -> SpawnedProcess {
        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var flags = Int32(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        #if canImport(Darwin)
        flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #else
        // The store's and the lock's descriptors are opened close-on-exec;
        // closing everything from 3 on also covers descriptors libraries
        // opened without it. (glibc ≥ 2.34 only declares it with _GNU_SOURCE.)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        #endif
        posix_spawnattr_setpgroup(&attributes, 0)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        sigdelset(&everySignal, SIGKILL)
        sigdelset(&everySignal, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw SpawnError(code: code) }
        return SpawnedProcess(pid: pid)
    }

    #if !canImport(Darwin)
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    /// `posix_spawn_file_actions_addclosefrom_np`, looked up once.
    static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }
    #endif

    /// Blocks until the process has exited, without reaping it.
    func waitForExit() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
    }

    /// Reaps the exited process and says how it ended.
    func reap() -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // The <sys/wait.h> macros, which Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Sends `signal` to the whole process group. Harmless once the group is
    /// empty (or holds only the unreaped leader).
    func signalGroup(_ signal: Int32) {
        _ = kill(-pid, signal)
    }
}

/// `posix_spawn` failed: the program could not be started at all.
struct SpawnError: Error {
    var code: Int32
    var message: String { String(cString: strerror(code)) }
}

/// A signal's name (`SIGTERM`), for messages.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
        SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ",
    ]
    return names[signal] ?? "signal \(signal)"
}
