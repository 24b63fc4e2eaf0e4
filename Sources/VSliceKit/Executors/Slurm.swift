import Foundation

/// `--executor slurm`: the segments still to do become one `sbatch --array=LIST%K` job (named
/// `vslice-TASK`) whose element i runs `vslice segment --work-dir DIR` (index from SLURM_ARRAY_TASK_ID).
/// The coordinator asks `squeue` what is queued or running (by job name, so a re-attached coordinator finds
/// the arrays an earlier one submitted) and never `sacct` (many clusters run without accounting) nor job
/// dependencies (`afterok` never fires once an element failed, even after a requeue). `sbatch`, `squeue` and
/// `scancel` are found on PATH and get this process's environment (e.g. SLURM_CONF).
struct SlurmEngine: ClusterEngine {
    var extraArgs: [String]

    var name: String { "slurm" }
    var pollInterval: Double { 1 }
    var canSubmit: Bool { true }

    static func jobName(task: String) -> String { "vslice-" + task }

    static func checkInstalled() throws(VSliceError) {
        for tool in ["sbatch", "squeue", "scancel"] where ExternalCommand.find(tool) == nil {
            throw VSliceError(.usage, "check options", reason: "--executor slurm needs Slurm's \(tool) on PATH")
        }
    }

    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> String {
        let work = job.workDir
        let script = (work as NSString).appendingPathComponent("segment.sbatch")
        let body = """
            #!/bin/sh
            # One segment of vslice task \(job.task.id); the index comes from SLURM_ARRAY_TASK_ID.
            exec \(ExternalCommand.quote(ExternalCommand.currentExecutable)) segment --work-dir \(ExternalCommand.quote(work))

            """
        try WorkFolder.writeAtomically(Data(body.utf8), to: script)
        chmod(script, 0o755)
        let args = ["--parsable", "--job-name=\(Self.jobName(task: job.task.id))",
                    "--array=\(Self.arraySpec(indices))%\(max(1, parallel))",
                    "--output=\((work as NSString).appendingPathComponent("slurm-%A_%a.out"))",
                    "--chdir=\(work)"] + extraArgs + [script]
        let r = try ExternalCommand.run("sbatch", args, timeout: 120)
        let id = r.stdout.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard r.status == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw VSliceError(.processing, "submit to slurm", path: work,
                              reason: "sbatch \(r.status == 0 ? "gave no job ID" : "exited \(r.status)"): "
                                  + (r.stderr + r.stdout).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return id
    }

    func inFlight(task: String) -> [Int: ElementState]? {
        guard let r = try? ExternalCommand.run("squeue", ["--noheader", "--array", "--name=\(Self.jobName(task: task))",
                                                          "--format=%K|%T"], timeout: 60), r.status == 0 else { return nil }
        var out: [Int: ElementState] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 2, let i = Int(f[0]) else { continue }
            let state: ElementState = ["RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"]
                .contains(f[1]) ? .running : .queued
            // One index may appear twice (an old element still completing, a resubmitted one queued): running wins.
            if out[i] != .running { out[i] = state }
        }
        return out
    }

    func cancel(task: String) { Self.cancel(task: task) }

    /// scancel every element of the task's arrays (`vslice cancel`, a cancelled coordinator).
    @discardableResult
    static func cancel(task: String) -> Bool {
        guard ExternalCommand.find("scancel") != nil,
              let r = try? ExternalCommand.run("scancel", ["--name=\(jobName(task: task))"], timeout: 60) else { return false }
        return r.status == 0
    }

    /// "0-5" or "1,3,7-9": Slurm's array index list.
    static func arraySpec(_ indices: [Int]) -> String {
        let sorted = Array(Set(indices)).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}

/// Runs a scheduler's command-line tool (never ffmpeg: media work stays in process).
enum ExternalCommand {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The absolute path of `tool` on PATH, or nil.
    static func find(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The running vslice binary, absolute (what the workers run).
    static var currentExecutable: String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return Transcoder.absolute(CommandLine.arguments[0])
    }

    /// A word for /bin/sh, single-quoted.
    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Runs `tool` with `args` (this process's environment), waits at most `timeout` seconds.
    static func run(_ tool: String, _ args: [String], timeout: Double) throws(VSliceError) -> Result {
        guard let path = find(tool) else {
            throw VSliceError(.processing, "run \(tool)", reason: "\(tool) is not on PATH")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw VSliceError(.processing, "run \(tool)", reason: error.localizedDescription)
        }
        // Read both pipes while it runs, so a chatty tool cannot fill one and block.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        Thread {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }.start()
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + timeout)
        timer.setEventHandler { if p.isRunning { p.terminate() } }
        timer.resume()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }
}
