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

/// The training programs a killed process left running. Each program's
/// trial folder gets a sidecar (`<folder>.program`: its pid, its start time
/// and the boot it started in) while the program runs; a `kill -9` of
/// pbtwave leaves the sidecar, and the next recovery of the run
/// (`PBTCoordinator.recoverAfterCrash`) stops every process group whose
/// leader is still that very process, before the trial runs again. (Before,
/// the orphans trained on beside their trials' new attempts.)
enum LeftoverPrograms {
    static let suffix = ".program"

    /// Records the program `pid` that runs into `directory`.
    static func record(_ pid: pid_t, for directory: String) {
        guard let start = startTime(of: pid) else { return }
        try? Data("\(pid)\t\(start)\t\(bootID ?? "")\n".utf8).write(to: URL(fileURLWithPath: directory + suffix))
    }

    /// Forgets the program of `directory` (it was reaped).
    static func forget(_ directory: String) { unlink(directory + suffix) }

    /// Stops (SIGTERM, SIGKILL after `grace`) the process group of every
    /// program recorded in `folder` whose leader still runs (the same pid,
    /// boot and start time: never a process that reused the id), and
    /// removes the records. Returns how many groups it stopped. With
    /// `directories` (trial folder names in `folder`), only their programs.
    /// `waiting`, if given, is told once when some still run a second after
    /// their SIGTERM (found by a helper: a resume sat silent for the grace).
    static func stop(in folder: String, only directories: Set<String>? = nil, grace: Double = 10,
                     waiting: ((String) -> Void)? = nil) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var stopped: [pid_t] = []
        for name in names where name.hasSuffix(suffix) && directories.map({ $0.contains(String(name.dropLast(suffix.count))) }) != false {
            let path = folder + "/" + name
            defer { unlink(path) }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let fields = text.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false) ?? []
            guard fields.count == 3, let pid = pid_t(fields[0]), pid > 1, let start = UInt64(fields[1]),
                  String(fields[2]) == (bootID ?? ""), startTime(of: pid) == start else { continue }
            kill(-pid, SIGTERM)
            stopped.append(pid)
        }
        guard !stopped.isEmpty else { return 0 }
        let deadline = Date().addingTimeInterval(grace)
        var told = waiting == nil
        while Date() < deadline, stopped.contains(where: { kill(-$0, 0) == 0 }) {
            if !told, Date() > deadline.addingTimeInterval(1 - grace) {
                told = true
                let left = stopped.filter { kill(-$0, 0) == 0 }.count
                waiting?("waiting for \(left) training program(s) a killed pbtwave left running to stop (SIGTERM sent; SIGKILL in "
                         + "\(Int((deadline.timeIntervalSinceNow).rounded())) s)")
            }
            usleep(50_000)
        }
        for pid in stopped where kill(-pid, 0) == 0 { kill(-pid, SIGKILL) }
        return stopped.count
    }

    /// When process `pid` started, in clock ticks since boot
    /// (`/proc/PID/stat` field 22); nil when there is no such process or no
    /// /proc.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": field 3 (state) onward; field 22 is the 20th of these.
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// This boot's id (Linux), so that a record from before a reboot matches nothing.
    static let bootID: String? = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
}
