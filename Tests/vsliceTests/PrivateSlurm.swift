import Foundation
import Testing

/// A private Slurm cluster on this machine for one test: a controller on 127.0.0.1 and one node (named after
/// the host, 2 CPUs) or several (n1, n2, … on 127.0.0.2, 127.0.0.3, …, each its own slurmd started with
/// `slurmd -N NAME`, its own port, spool, log and pid file, 1 CPU each; all share the filesystem). Generated
/// slurm.conf: no munge, no systemd, no accounting; state, spool, logs and pid files in a scratch folder;
/// ports of its own. Several nodes get a short SlurmdTimeout, so that a node killed mid-run is marked down
/// within seconds (12 s measured: 5 s SlurmdTimeout, 3 s MessageTimeout). Stopped by the pids in its own pid
/// files.
final class PrivateSlurm {
    static let installed: Bool = ["slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol"].allSatisfy { tool in
        ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }
    static let skipReason: Comment = "Slurm is not installed (slurmctld, slurmd, sbatch, squeue, scancel, sinfo, scontrol); scripts/setup installs it"

    let dir: URL
    /// The nodes' names, as Slurm knows them.
    let nodes: [String]
    var conf: String { dir.appendingPathComponent("slurm.conf").path }
    var environment: [String: String] { ["SLURM_CONF": conf] }

    /// `nodes` slurmd (at most 4); `maxArraySize`: the cluster's MaxArraySize (Slurm's default when nil).
    init(nodes count: Int = 1, maxArraySize: Int? = nil) throws {
        precondition((1...4).contains(count))
        if !Self.installed { print("SlurmTests skipped: \(Self.skipReason)") }
        dir = try Paths.scratch("slurm")
        for sub in ["state", "spool"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let host = Self.hostName
        nodes = count == 1 ? [host] : (1...count).map { "n\($0)" }
        try Self.config(dir: dir.path, host: host, nodes: nodes, maxArraySize: maxArraySize).write(toFile: conf, atomically: true, encoding: .utf8)
        for node in nodes {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("spool/\(node)"), withIntermediateDirectories: true)
        }
        guard try Self.startDaemon("slurmctld", ["-i", "-f", conf]) == 0 else {
            throw OracleError("slurmctld did not start: \(log("slurmctld"))")
        }
        try waitForController()
        for node in nodes where try Self.startDaemon("slurmd", ["-f", conf, "-N", node]) != 0 {
            stop()
            throw OracleError("slurmd \(node) did not start: \(log("slurmd-\(node)"))")
        }
        try waitForNodes()
    }

    /// The controller answers `scontrol ping` before any slurmd starts, so that no node registers with a
    /// controller still reading its state.
    private func waitForController() throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let r = try Proc.run("scontrol", ["ping"], timeout: 30, environment: environment)
            if r.stdout.contains("UP") { return }
            Thread.sleep(forTimeInterval: 0.25)
        }
        stop()
        throw OracleError("the private slurmctld did not answer within 30 s: \(log("slurmctld").suffix(1500))")
    }

    /// Every node idle within 60 s. A CI run once saw three nodes that never turned idle (logs without an error);
    /// after 20 s `scontrol reconfigure` asks every slurmd to register again, and a failure says what `sinfo`
    /// last said of each node, with each daemon's log.
    private func waitForNodes() throws {
        let start = Date()
        var nudged = false
        var last = ""
        while Date().timeIntervalSince(start) < 60 {
            let r = try Proc.run("sinfo", ["--noheader", "--Node", "--format=%N|%T|%E"], timeout: 30, environment: environment)
            last = (r.stdout + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            if try nodeStates().values.filter({ $0 == "idle" }).count == nodes.count { return }
            if !nudged && Date().timeIntervalSince(start) > 20 {
                nudged = true
                print("PrivateSlurm: nodes not idle after 20 s (\(last.replacingOccurrences(of: "\n", with: "; "))); scontrol reconfigure")
                _ = try? Proc.run("scontrol", ["reconfigure"], timeout: 30, environment: environment)
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        stop()
        let logs = nodes.map { "slurmd-\($0): \(log("slurmd-\($0)").suffix(600))" }.joined(separator: "\n")
        throw OracleError("the private Slurm nodes did not come up in 60 s; sinfo said: \(last)\nslurmctld: \(log("slurmctld").suffix(1500))\n\(logs)")
    }

    /// Starts a daemon (which forks itself away) with every signal unblocked and at its default, and returns the
    /// exit status of the command. The test's threads block most signals and a child inherits the mask: a slurmd
    /// started with it never takes SIGTERM and has to be killed (measured: 20 s per test, waiting for it).
    static func startDaemon(_ program: String, _ args: [String]) throws -> Int32 {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawnp(&pid, program, nil, &attr, argv, envp)
        guard rc == 0 else { throw OracleError("could not start \(program): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
    }

    static var hostName: String {
        var name = [UInt8](repeating: 0, count: 256)
        gethostname(&name, name.count)
        return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self).split(separator: ".").first.map(String.init) ?? "localhost"
    }

    static func config(dir d: String, host: String, nodes: [String], maxArraySize: Int?) -> String {
        // Ports of this test process, so that test runs of other worktrees on the machine do not meet.
        let port = 20000 + Int(getpid() % 9000) * 5
        let nodeLines = nodes.count == 1
            ? "NodeName=\(nodes[0]) NodeAddr=127.0.0.1 Port=\(port + 1) CPUs=2 State=UNKNOWN"
            : nodes.enumerated().map { i, n in
                "NodeName=\(n) NodeAddr=127.0.0.\(i + 2) NodeHostname=\(host) Port=\(port + 1 + i) CPUs=1 State=UNKNOWN"
            }.joined(separator: "\n")
        let quickNodeFailure = nodes.count == 1 ? "" : "SlurmdTimeout=5\nMessageTimeout=3\n"
        return """
            ClusterName=vslicetest
            SlurmctldHost=\(host)(127.0.0.1)
            SlurmUser=root
            SlurmdUser=root
            SlurmctldPort=\(port)
            SlurmdPort=\(port + 1)
            AuthType=auth/none
            CredType=cred/none
            ProctrackType=proctrack/pgid
            TaskPlugin=task/none
            MpiDefault=none
            SwitchType=switch/none
            StateSaveLocation=\(d)/state
            SlurmdSpoolDir=\(d)/spool/%n
            SlurmctldPidFile=\(d)/slurmctld.pid
            SlurmdPidFile=\(d)/slurmd-%n.pid
            SlurmctldLogFile=\(d)/slurmctld.log
            SlurmdLogFile=\(d)/slurmd-%n.log
            SchedulerType=sched/backfill
            SchedulerParameters=batch_sched_delay=0
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            AccountingStorageType=accounting_storage/none
            JobAcctGatherType=jobacct_gather/none
            JobCompType=jobcomp/none
            ReturnToService=2
            KillWait=5
            InactiveLimit=0
            \(quickNodeFailure)\(maxArraySize.map { "MaxArraySize=\($0)\n" } ?? "")\(nodeLines)
            PartitionName=test Nodes=\(nodes.joined(separator: ",")) Default=YES MaxTime=INFINITE State=UP

            """
    }

    /// A daemon's log: "slurmctld", or "slurmd-NODE".
    func log(_ daemon: String) -> String {
        (try? String(contentsOfFile: dir.appendingPathComponent("\(daemon).log").path, encoding: .utf8)) ?? ""
    }

    /// How many batch jobs (arrays) were submitted to this controller.
    var submissions: Int {
        log("slurmctld").components(separatedBy: "_slurm_rpc_submit_batch_job").count - 1
    }

    /// `squeue` lines of vslice's arrays: the array index (SLURM_ARRAY_TASK_ID), state, element job ("12_3"),
    /// array job ID and node.
    func queue() throws -> [(index: Int, state: String, job: String, array: String, node: String)] {
        let r = try Proc.run("squeue", ["--noheader", "--array", "--format=%K|%T|%i|%j|%F|%N"], timeout: 30, environment: environment)
        return r.stdout.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 6, f[3].hasPrefix("vslice-"), let i = Int(f[0]) else { return nil }
            return (i, f[1], f[2], f[4], f[5])
        }
    }

    /// Each node's state as `sinfo` says it ("idle", "allocated", "down*", …).
    func nodeStates() throws -> [String: String] {
        let r = try Proc.run("sinfo", ["--noheader", "--Node", "--format=%N|%T"], timeout: 30, environment: environment)
        var out: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if f.count == 2 { out[f[0]] = f[1] }
        }
        return out
    }

    /// Kills a node as a power cut would: kill -9 of its slurmd (by its pid file), of the slurmstepd of every job
    /// Slurm runs there, and of all their descendants (the job's processes). Returns the pids killed.
    @discardableResult
    func killNode(_ node: String) throws -> [pid_t] {
        var victims: [pid_t] = []
        if let pid = pidFromFile("slurmd-\(node)") { victims.append(pid) }
        let r = try Proc.run("squeue", ["--noheader", "--array", "--nodelist=\(node)", "--format=%A"], timeout: 30, environment: environment)
        let jobs = Set(r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        var children: [pid_t: [pid_t]] = [:]
        var steps: [pid_t] = []
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap({ pid_t($0) }) ?? [] {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let ppid = stat.split(separator: ")").last?.split(separator: " ").dropFirst().first.flatMap({ pid_t($0) }) else { continue }
            children[ppid, default: []].append(pid)
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            if cmd.hasPrefix("slurmstepd: ["), jobs.contains(where: { cmd.hasPrefix("slurmstepd: [\($0).") }) { steps.append(pid) }
        }
        var queue = steps
        while let pid = queue.popLast() {
            victims.append(pid)
            queue += children[pid] ?? []
        }
        for pid in Set(victims) where pid > 1 { kill(pid, SIGKILL) }
        // Its pid file names a dead process now; stop() must not signal whoever gets that pid next.
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("slurmd-\(node).pid"))
        return Array(Set(victims))
    }

    /// The pid in a daemon's pid file, if that process is still a Slurm daemon.
    private func pidFromFile(_ daemon: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: dir.appendingPathComponent("\(daemon).pid").path, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
              let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmd.hasPrefix("slurm") else { return nil }
        return pid
    }

    /// Cancels what this controller still runs (a failed test may leave elements running, whose steps would
    /// outlive the daemons), then stops the daemons by the pids in their own pid files (all told at once), and
    /// waits for them to end.
    func stop() {
        if let q = try? queue(), !q.isEmpty, pidFromFile("slurmctld") != nil {
            _ = try? Proc.run("scancel", ["--user=\(getuid())"], timeout: 30, environment: environment)
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline, let q = try? queue(), !q.isEmpty { Thread.sleep(forTimeInterval: 0.25) }
        }
        let pids = (nodes.map { "slurmd-\($0)" } + ["slurmctld"]).compactMap(pidFromFile)
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(20)
        for pid in pids {
            while kill(pid, 0) == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }
}
