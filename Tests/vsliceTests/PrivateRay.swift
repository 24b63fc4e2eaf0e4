import Foundation
import TestScratch
import Testing

/// A private Ray cluster on this machine for one test: a head and one more node, each `ray start` of the Ray in
/// `.venv-ray` (scripts/setup) with one CPU, on loopback addresses of their own (head 127.0.0.2, node
/// 127.0.0.3: Ray 2.60 turns `--node-ip-address 127.0.0.1` into the machine's interface address, and only
/// other loopback addresses stay as given), with every port pinned in a block of this process's own (6000–9999,
/// outside Ray's default worker ports 10002–19999, each port checked free), its own temp dir, usage stats off
/// and a 100 MB object store. Every process of the cluster carries `VSLICE_TEST_RAY=DIR` (and its node's
/// `VSLICE_TEST_RAY_NODE=IP`) in its environment — the daemons, the actors' workers and the `vslice segment`
/// processes they start — and is stopped by its pid, found by that mark.
final class PrivateRay {
    static let venv = Paths.packageRoot.appendingPathComponent(".venv-ray").path
    static let python = venv + "/bin/python"
    static let ray = venv + "/bin/ray"
    static let driver = Paths.packageRoot.appendingPathComponent("share/vslice/vslice_ray.py").path
    static let installed: Bool = FileManager.default.isExecutableFile(atPath: python) && FileManager.default.isExecutableFile(atPath: ray)
    static let skipReason: Comment = "Ray is not installed in .venv-ray (scripts/setup installs it)"

    static let headIP = "127.0.0.2"
    let dir: String
    let port: Int
    /// The nodes' addresses, the head's first.
    let ips: [String]
    var address: String { "\(Self.headIP):\(port)" }
    /// What a vslice coordinator needs to use this cluster.
    var environment: [String: String] {
        ["VSLICE_RAY_PYTHON": Self.python, "VSLICE_RAY_DRIVER": Self.driver, "RAY_DISABLE_USAGE_STATS": "1", "RAY_ADDRESS": address]
    }

    /// Blocks of ports handed out in this process (a stopped cluster's ports may linger in TIME_WAIT).
    nonisolated(unsafe) private static var nextBlock = Int(getpid() % 80)
    private static let blockLock = NSLock()

    /// `nodes` nodes (1 or 2); `nodeEnvironment`: more environment for the second node's daemons (and so its
    /// actors and their elements).
    init(nodes: Int = 2, nodeEnvironment: [String: String] = [:]) throws {
        precondition((1...2).contains(nodes))
        dir = TestScratch.root + "/r\(UUID().uuidString.prefix(4))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let base = try Self.freeBlock(size: 50)
        port = base
        ips = Array([Self.headIP, "127.0.0.3"].prefix(nodes))
        for (k, ip) in ips.enumerated() {
            let p = base + 1 + k * 24
            var args = k == 0 ? ["start", "--head", "--port", "\(port)", "--include-dashboard", "false"] : ["start", "--address", address]
            args += ["--node-ip-address", ip, "--num-cpus", "1", "--temp-dir", dir, "--disable-usage-stats",
                     "--object-store-memory", "100000000",
                     "--node-manager-port", "\(p)", "--object-manager-port", "\(p + 1)", "--runtime-env-agent-port", "\(p + 2)",
                     "--dashboard-agent-grpc-port", "\(p + 3)", "--dashboard-agent-listen-port", "\(p + 4)",
                     "--metrics-export-port", "\(p + 5)", "--min-worker-port", "\(p + 6)", "--max-worker-port", "\(p + 23)"]
            let env = (k == 1 ? nodeEnvironment : [:]).merging(["VSLICE_TEST_RAY": dir, "VSLICE_TEST_RAY_NODE": ip,
                                                                 "RAY_DISABLE_USAGE_STATS": "1"]) { $1 }
            let status = try Self.spawn(Self.ray, args, environment: env, log: dir + "/start-\(ip).log")
            guard status == 0 else {
                let said = (try? String(contentsOfFile: dir + "/start-\(ip).log", encoding: .utf8)) ?? ""
                stop()
                throw OracleError("ray start (\(ip)) exited \(status): \(said.suffix(1500))")
            }
        }
        try waitForNodes()
    }

    /// A block of `size` consecutive ports in 6000–9999 that all bind now on 127.0.0.1 and the nodes' addresses.
    private static func freeBlock(size: Int) throws -> Int {
        blockLock.lock()
        defer { blockLock.unlock() }
        for _ in 0..<80 {
            let base = 6000 + (nextBlock % 80) * size
            nextBlock += 1
            if (base..<(base + size)).allSatisfy(portIsFree) { return base }
        }
        throw OracleError("no free block of \(size) ports in 6000–9999")
    }

    private static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = INADDR_ANY
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Every node alive within 60 s (the driver's `check` counts them).
    private func waitForNodes() throws {
        let deadline = Date().addingTimeInterval(60)
        var last = ""
        while Date() < deadline {
            let r = try Proc.run(Self.python, [Self.driver, "check", "--address", address], timeout: 60, environment: environment)
            last = r.stdout + r.stderr.suffix(600)
            if let c = try? jsonObject(r.stdout), c["nodes"] as? Int == ips.count { return }
            Thread.sleep(forTimeInterval: 0.5)
        }
        stop()
        throw OracleError("the private Ray's \(ips.count) nodes were not alive within 60 s: \(last)")
    }

    /// Runs a program (which may fork daemons away) with every signal unblocked and at its default — the test's
    /// threads block most signals, and a child inherits the mask — its output into `log`; returns its exit status.
    static func spawn(_ program: String, _ args: [String], environment: [String: String], log: String) throws -> Int32 {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&files, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&files, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + args).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, program, &files, &attr, argv, envp)
        guard rc == 0 else { throw OracleError("could not start \(program): \(String(cString: strerror(rc)))") }
        let deadline = Date().addingTimeInterval(120)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return -1 }
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return -1
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return status & 0x7f != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
    }

    /// The processes of this cluster (of one node: its address), by the mark in their environment.
    func pids(node: String? = nil) -> [pid_t] {
        let mark = "VSLICE_TEST_RAY=\(dir)", nodeMark = node.map { "VSLICE_TEST_RAY_NODE=\($0)" }
        var out: [pid_t] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
            let vars = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains(mark) && (nodeMark.map(vars.contains) ?? true) { out.append(pid) }
        }
        return out
    }

    /// Each node's Ray node ID, by address (the driver's view).
    func nodeIDs() throws -> [String: String] {
        let code = """
            import ray, json, sys
            ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
            print(json.dumps({n["NodeManagerAddress"]: n["NodeID"] for n in ray.nodes()}))
            """
        let r = try Proc.run(Self.python, ["-c", code, address], timeout: 60, environment: environment)
        guard let ids = try jsonObject(r.stdout.split(separator: "\n").last.map(String.init) ?? "") as? [String: String] else {
            throw OracleError("no node IDs: \(r.stderr.suffix(500))")
        }
        return ids
    }

    /// The named actors Ray knows in a task's namespace (empty when none is left).
    func actors(task: String) throws -> [String] {
        let code = """
            import ray, json, sys
            ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
            print(json.dumps([a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == sys.argv[2]]))
            """
        let r = try Proc.run(Self.python, ["-c", code, address, "vslice-" + task], timeout: 60, environment: environment)
        guard let last = r.stdout.split(separator: "\n").last,
              let names = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String] else {
            throw OracleError("no actor list: \(r.stderr.suffix(500))")
        }
        return names
    }

    /// What the task's queue holds (the driver's `inflight`: queued indices, running ones with node and actor).
    func inflight(task: String) throws -> [String: Any] {
        let r = try Proc.run(Self.python, [Self.driver, "inflight", "--address", address, "--namespace", "vslice-" + task],
                             timeout: 60, environment: environment)
        return try jsonObject(r.stdout)
    }

    /// Kills a node as a power cut would: kill -9 of every process of it (its raylet, agents, log monitor, the
    /// actors' workers and what they run). Returns the pids killed.
    @discardableResult
    func killNode(_ ip: String) -> [pid_t] {
        let victims = pids(node: ip)
        for pid in victims { kill(pid, SIGKILL) }
        return victims
    }

    /// Stops every process of the cluster by its pid: SIGTERM, then SIGKILL after 10 s for what is left.
    func stop() {
        let first = pids()
        for pid in first { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && !pids().isEmpty { Thread.sleep(forTimeInterval: 0.2) }
        for pid in pids() { kill(pid, SIGKILL) }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
