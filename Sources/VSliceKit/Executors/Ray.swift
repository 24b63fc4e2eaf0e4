import Foundation
import VSliceLedger
import VSliceModel
import VSliceSupport

/// `--executor ray`: the elements run on a Ray cluster — the worker contract Slurm elements run — inside long-lived
/// actors, each keeping one `vslice segment --work-dir DIR --serve` process (`WorkerLoop.serving`) that it feeds
/// index after index, so that the process start is paid once per actor and a `--process-persistent` program stays
/// loaded across its elements. vslice stays Swift: the Ray side is a small Python
/// driver shipped with vslice (`share/vslice/vslice_ray.py`, installed beside the binary as `vslice_ray.py`),
/// run with the Python that has Ray (`VSLICE_RAY_PYTHON`, else `python3`). Only `--executor ray` starts it.
///
/// Per task, in the Ray namespace `vslice-TASK`: a `queue` actor holding the indices to run and who runs them,
/// and up to `--jobs` `worker-N` actors (detached, `num_cpus` = `--threads`, default 1; `num_gpus` = 1 with
/// `--gpus`), placed by Ray, each taking index after index from the queue and ending when it is empty. Nothing
/// restarts on its own (actors `max_restarts=0`, calls not retried): a worker that dies — its node, an OOM kill —
/// stops beating, the queue forgets its element, and this coordinator, like under Slurm (`ElementTracker`),
/// calls the element lost after 3 looks without it and without a trace record, records the lost attempt and
/// submits the index again, which tops the pool back up to `--jobs` workers. A late worker cannot replace a
/// sealed segment (workers seal with link()). Ctrl-C and `vslice cancel` stop the actors (their elements get
/// SIGTERM and write their own interrupted records); `--detach` leaves them running and `resume` re-attaches.
///
/// The coordinator keeps one driver process for its watch (`serve`: a request and its answer are one JSON
/// line each), as a one-shot `inflight` costs a Python start and a Ray connection (≈ 1.8 s wall, 0.5 s CPU
/// measured) at every look; `vslice status` and `vslice cancel` run one-shot commands.
struct RayEngine: ClusterEngine {
    var address: String
    let driver: RayDriver

    init(address: String) {
        self.address = address
        driver = RayDriver(address: address)
    }

    var name: String { "ray" }
    var pollInterval: Double { 1 }
    var canSubmit: Bool { true }
    var stopsWithCoordinator: Bool { true }

    /// The driver protocol this vslice speaks (the driver's `VERSION`).
    static let driverVersion = 2

    static func namespace(task: TaskID) -> String { "vslice-" + task.rawValue }

    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])] {
        let request: [String: Any] = ["op": "submit", "namespace": Self.namespace(task: job.task.id), "indices": indices,
                                      "parallel": max(1, parallel), "spec": Self.spec(job)]
        let answer = driver.request(request, timeout: 120)
        guard case .success(let data) = answer, let r = try? JSONDecoder().decode(RaySubmitted.self, from: data) else {
            throw VSliceError(.processing, "submit to ray", path: job.workDir, reason: answer.failureReason ?? "the driver's answer did not parse")
        }
        return [(r.id, indices)]
    }

    /// What each worker gets: the binary to run (the coordinator's own, at the same path on every node), the work
    /// folder, its resources, and the environment vslice reads (`VSLICE_*`: fault injection, FFmpeg's log…).
    static func spec(_ job: EncodeJob) -> [String: Any] {
        let env = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("VSLICE_") && !$0.key.hasPrefix("VSLICE_RAY_") }
        return ["vslice": ExternalCommand.currentExecutable, "work_dir": job.workDir, "num_cpus": job.settings.threads ?? 1,
                "num_gpus": job.settings.gpus.isEmpty ? 0 : 1, "env": env]
    }

    func inFlight(task: TaskID) -> [Int: ElementSighting]? {
        guard case .success(let data) = driver.request(["op": "inflight", "namespace": Self.namespace(task: task)], timeout: 60),
              let held = try? JSONDecoder().decode(RayHeld.self, from: data) else { return nil }
        return held.sightings
    }

    func nodeTrouble(_ nodes: Set<String>) -> [String: String] {
        guard case .success(let data) = driver.request(["op": "nodes", "nodes": nodes.sorted()], timeout: 60),
              let r = try? JSONDecoder().decode(RayNodeTrouble.self, from: data) else { return [:] }
        return r.trouble
    }

    func cancel(task: TaskID) {
        _ = driver.request(["op": "cancel", "namespace": Self.namespace(task: task)], timeout: 120)
    }

    // MARK: before any work

    /// Python, the driver (of this vslice's version), Ray, and a cluster that answers at `address`, before any
    /// work: a cluster that cannot be reached is refused (exit 1) with the address and Ray's words.
    static func check(address: String) throws(VSliceError) {
        let (python, driver) = try RayDriver.locate()
        let r: ExternalCommand.Result
        do { r = try ExternalCommand.run(python, [driver, "check", "--address", address], timeout: 60) } catch {
            throw VSliceError(.usage, "check options", reason: "--executor ray could not run \(python): \(error.reason)")
        }
        let answer = RayDriver.parse(r)
        switch answer {
        case .success(let data):
            let c = try? JSONDecoder().decode(RayCheck.self, from: data)
            guard c?.version == driverVersion else {
                throw VSliceError(.usage, "check options", path: driver,
                                  reason: "this Ray driver speaks version \(c?.version.map(String.init) ?? "?"), this vslice \(driverVersion): "
                                    + "install the driver of this vslice beside it (scripts/setup)")
            }
        case .failure(let why):
            if RayDriver.setupProblem(data: r.stdout) {
                throw VSliceError(.usage, "check options", reason: "--executor ray needs Ray in \(python) (VSLICE_RAY_PYTHON): \(why.reason)")
            }
            throw VSliceError(.processing, "check Ray", reason: "the cluster at \(address) cannot be reached (\(why.reason)); nothing was started")
        }
    }
}

/// Task control from other commands (`vslice status`, `vslice cancel`, `gc --unfinished`): one-shot driver runs.
enum RayControl {
    /// The task's elements the Ray queue holds, with where each runs; nil when the cluster did not answer.
    static func held(task: TaskID, address: String) -> RayHeld? {
        guard case .success(let data) = oneShot("inflight", task: task, address: address, timeout: 60) else { return nil }
        return try? JSONDecoder().decode(RayHeld.self, from: data)
    }

    /// "running on 127.0.0.3 (ray node 978ce3ae5c74), ray actor worker-2" or "queued (ray)", by element index.
    static func scheduled(task: TaskID, address: String) -> [Int: String]? {
        guard let held = held(task: task, address: address) else { return nil }
        var out: [Int: String] = [:]
        for i in held.queued { out[i] = "queued (ray)" }
        for (key, r) in held.running {
            guard let i = Int(key) else { continue }
            out[i] = "running on \(r.ip ?? r.host ?? "?") (ray node \(r.node.prefix(12))), ray actor \(r.name)"
        }
        return out
    }

    /// Stops the task's actors; nil when the cluster did, else why not (and what to run later).
    static func cancel(task: TaskID, address: String) -> String? {
        switch oneShot("cancel", task: task, address: address, timeout: 120) {
        case .success: return nil
        case .failure(let e): return "ray did not stop the task's actors (\(e.reason)); run this cancel again when the cluster at \(address) answers"
        }
    }

    private static func oneShot(_ op: String, task: TaskID, address: String, timeout: Double) -> Result<Data, VSliceError> {
        do {
            let (python, driver) = try RayDriver.locate()
            let r = try ExternalCommand.run(python, [driver, op, "--address", address, "--namespace", RayEngine.namespace(task: task)],
                                            timeout: timeout)
            return RayDriver.parse(r)
        } catch {
            return .failure(error)
        }
    }
}

// MARK: the driver's answers

struct RayCheck: Decodable {
    var version: Int?
    var ray: String?
    var nodes: Int?
}

struct RaySubmitted: Decodable {
    var id: String
}

struct RayNodeTrouble: Decodable {
    var trouble: [String: String]
}

/// What a task's queue holds: the indices waiting, and those running (on which node, in which actor, which
/// attempt).
struct RayHeld: Decodable {
    struct Running: Decodable {
        var node: String
        var ip: String?
        var host: String?
        var name: String
        var attempt: String
    }

    var queued: [Int]
    var running: [String: Running]

    var sightings: [Int: ElementSighting] {
        var out: [Int: ElementSighting] = [:]
        for i in queued { out[i] = ElementSighting(state: .queued) }
        for (key, r) in running {
            guard let i = Int(key) else { continue }
            out[i] = ElementSighting(state: .running, node: r.node, job: r.attempt, arrayJob: r.name)
        }
        return out
    }
}

/// The coordinator's driver process (`vslice_ray.py serve`): requests and answers as JSON lines, each answer
/// waited for at most its timeout. A driver that does not answer in time, or died, is killed and started again
/// at the next request. It ends when this process closes its stdin (or dies).
final class RayDriver: @unchecked Sendable {
    let address: String
    private let lock = NSLock()
    private var process: Process?
    private var input: FileHandle?
    private var output: Int32 = -1
    private var buffered = Data()
    private let stderrTail = Tail()
    private var sequence = 0

    init(address: String) { self.address = address }

    deinit { stopProcess(kill: false) }

    /// The Python with Ray and the driver: `VSLICE_RAY_PYTHON` (else `python3` on PATH), `VSLICE_RAY_DRIVER` (else
    /// `vslice_ray.py` beside this binary, else `../share/vslice/vslice_ray.py` from it).
    static func locate(environment env: [String: String] = ProcessInfo.processInfo.environment) throws(VSliceError) -> (python: String, driver: String) {
        let pythonName = env["VSLICE_RAY_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        guard let python = ExternalCommand.find(pythonName) else {
            throw VSliceError(.usage, "check options",
                              reason: "--executor ray needs a Python with Ray: \(pythonName) was not found (set VSLICE_RAY_PYTHON; scripts/setup makes .venv-ray)")
        }
        let bin = (ExternalCommand.currentExecutable as NSString).deletingLastPathComponent
        let candidates = env["VSLICE_RAY_DRIVER"].flatMap { $0.isEmpty ? nil : [$0] }
            ?? [bin + "/vslice_ray.py", ((bin + "/../share/vslice/vslice_ray.py") as NSString).standardizingPath]
        guard let driver = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
            throw VSliceError(.usage, "check options",
                              reason: "--executor ray needs vslice's Ray driver, not found at \(candidates.joined(separator: " or ")) "
                                + "(scripts/setup installs it beside the binary; VSLICE_RAY_DRIVER names another)")
        }
        return (python, Paths.absolute(driver))
    }

    /// A one-shot run's answer: its JSON when it says ok, else its error (or Ray's last words on stderr).
    static func parse(_ r: ExternalCommand.Result) -> Result<Data, VSliceError> {
        let line = r.stdout.split(whereSeparator: \.isNewline).last.map { Data($0.utf8) } ?? Data()
        return answer(line, stderr: r.stderr, status: r.status)
    }

    static func answer(_ line: Data, stderr: String, status: Int32?) -> Result<Data, VSliceError> {
        if let e = try? JSONDecoder().decode(Envelope.self, from: line) {
            return e.ok ? .success(line) : .failure(VSliceError(.processing, "ray", reason: e.error ?? "failed"))
        }
        let said = rayWords(stderr) ?? status.map { "the driver exited \($0) without an answer" } ?? "no answer"
        return .failure(VSliceError(.processing, "ray", reason: said))
    }

    /// Whether a failed answer says Ray itself is missing or broken here (not the cluster unreachable).
    static func setupProblem(data: String) -> Bool {
        guard let line = data.split(whereSeparator: \.isNewline).last,
              let e = try? JSONDecoder().decode(Envelope.self, from: Data(line.utf8)) else { return false }
        return e.kind == "setup"
    }

    /// The most telling line of Ray's stderr: its own error ("Failed to connect to GCS at address … within 10
    /// seconds."), without the log prefix; else the last line.
    static func rayWords(_ stderr: String) -> String? {
        let lines = stderr.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let line = lines.first { $0.contains("Failed to connect to GCS") } ?? lines.last
        guard var line else { return nil }
        // "[2026-12-06 22:40:59,220 W 13572 13572] rpc_client.h:153: Failed to …"
        if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
            line = String(line[line.index(after: close)...]).trimmingCharacters(in: .whitespaces)
            if let colon = line.range(of: ": "), line[..<colon.lowerBound].contains(".") { line = String(line[colon.upperBound...]) }
        }
        return String(line.prefix(400))
    }

    struct Envelope: Decodable {
        var ok: Bool
        var error: String?
        var kind: String?
    }

    /// Sends one request, waits at most `timeout` seconds for its answer.
    func request(_ body: [String: Any], timeout: Double) -> Result<Data, VSliceError> {
        lock.lock()
        defer { lock.unlock() }
        sequence += 1
        var body = body
        body["seq"] = sequence
        guard let data = try? JSONSerialization.data(withJSONObject: body) else {
            return .failure(VSliceError(.processing, "ray", reason: "request did not encode"))
        }
        do throws(VSliceError) {
            try startIfNeeded()
            try send(data + Data("\n".utf8))
            let line = try readLine(deadline: monotonicSeconds() + timeout)
            return Self.answer(line, stderr: stderrTail.text, status: nil)
        } catch {
            stopProcess(kill: true)
            return .failure(error)
        }
    }

    private func startIfNeeded() throws(VSliceError) {
        if let p = process, p.isRunning { return }
        stopProcess(kill: true)
        Self.ignoreSIGPIPE
        let (python, driver) = try Self.locate()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [driver, "serve", "--address", address]
        // Never import from the caller's folder.
        p.currentDirectoryURL = URL(fileURLWithPath: "/")
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        do { try p.run() } catch {
            throw VSliceError(.processing, "start the Ray driver", path: driver, reason: plainReason(error))
        }
        process = p
        input = inPipe.fileHandleForWriting
        output = outPipe.fileHandleForReading.fileDescriptor
        buffered = Data()
        let tail = stderrTail
        tail.reset()
        let errHandle = errPipe.fileHandleForReading
        Thread {
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { break }
                tail.append(chunk)
            }
        }.start()
        // Kept so that the read ends stay open with the process.
        pipes = (inPipe, outPipe, errPipe)
    }

    private var pipes: (Pipe, Pipe, Pipe)?

    private func send(_ data: Data) throws(VSliceError) {
        guard let input else { throw VSliceError(.processing, "ray", reason: "the driver is not running") }
        var sent = 0
        let fd = input.fileDescriptor
        while sent < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + sent, data.count - sent) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw VSliceError(.processing, "ray", reason: "the driver ended" + exitNote()) }
            sent += n
        }
    }

    private func readLine(deadline: Double) throws(VSliceError) -> Data {
        while true {
            if let nl = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffered[buffered.startIndex..<nl]
                buffered = Data(buffered[(nl + 1)...])
                return Data(line)
            }
            let left = deadline - monotonicSeconds()
            guard left > 0 else {
                throw VSliceError(.processing, "ray", reason: "the driver did not answer in time" + (Self.rayWords(stderrTail.text).map { " (\($0))" } ?? ""))
            }
            var pfd = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno != EINTR { throw VSliceError(.processing, "ray", reason: String(cString: strerror(errno))) }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(output, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                Thread.sleep(forTimeInterval: 0.1)
                throw VSliceError(.processing, "ray", reason: (Self.rayWords(stderrTail.text) ?? "the driver ended") + exitNote())
            }
            buffered.append(contentsOf: chunk[0..<n])
        }
    }

    private func exitNote() -> String {
        guard let p = process, !p.isRunning else { return "" }
        return " (exit \(p.terminationStatus))"
    }

    /// Closes the driver's stdin (it ends on its own); with `kill`, SIGKILL as well (it did not answer).
    private func stopProcess(kill hard: Bool) {
        try? input?.close()
        if let p = process, p.isRunning, hard {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        process = nil
        input = nil
        pipes = nil
        output = -1
    }

    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// The last few KiB of the driver's stderr (Ray's log lines), for error messages.
    final class Tail: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ chunk: Data) {
            lock.lock()
            data.append(chunk)
            if data.count > 8192 { data = Data(data.suffix(8192)) }
            lock.unlock()
        }
        func reset() { lock.lock(); data = Data(); lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }
}

extension Result where Failure == VSliceError {
    /// The failure's reason, if it failed.
    var failureReason: String? {
        if case .failure(let e) = self { return e.reason }
        return nil
    }
}
