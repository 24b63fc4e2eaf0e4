import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// `--executor slurm`: the segments still to do become `sbatch --array=LIST%K` jobs (named `vslice-TASK`) whose
/// element runs `vslice segment --work-dir DIR --index I` — one array, or several when the segment indices
/// reach past the cluster's `MaxArraySize` (an array's indices stay below it: each array holds indices
/// BASE+0 … BASE+MaxArraySize−1, its elements get SLURM_ARRAY_TASK_ID + BASE, and BASE is the batch script's
/// argument, which `squeue` shows). Elements are submitted `--no-requeue`: an element whose node fails ends,
/// and the coordinator submits it again at once (Slurm's own requeue holds a job back two minutes or more).
/// The coordinator asks `squeue` what is queued or running (by job name, so a re-attached coordinator finds
/// the arrays an earlier one submitted), `sinfo` about the nodes of elements that vanished, and never `sacct`
/// (many clusters run without accounting) nor job dependencies (`afterok` never fires once an element failed,
/// even after a requeue). `sbatch`, `squeue`, `scancel`, `scontrol` and `sinfo` are found on PATH and get this
/// process's environment (e.g. SLURM_CONF).
struct SlurmEngine: ClusterEngine {
    var extraArgs: [String]
    /// `--workers-stay-up`: the arrays' elements are workers that claim element after element (SlurmWorkers.swift).
    var staysUp = false

    var name: String { "slurm" }
    var pollInterval: Double { 1 }
    var canSubmit: Bool { true }

    static func jobName(task: TaskID) -> String { "vslice-" + task.rawValue }

    /// Slurm's default `MaxArraySize` (array indices 0–1000), used when `scontrol` cannot say.
    static let defaultMaxArraySize = 1001

    /// Slurm's commands on PATH, and a controller that answers (`squeue`), before any work: a dead controller
    /// would otherwise be found after the probe, the plan and the audio.
    static func checkInstalled() throws(VSliceError) {
        for tool in ["sbatch", "squeue", "scancel"] where ExternalCommand.find(tool) == nil {
            throw VSliceError(.usage, "check options", reason: "--executor slurm needs Slurm's \(tool) on PATH")
        }
        let r = try? ExternalCommand.run("squeue", ["--noheader", "--name=vslice-check"], timeout: 60)
        guard let r, r.status == 0 else {
            let said = r?.stderr.split(whereSeparator: \.isNewline).last.map(String.init) ?? "no answer in 60 s"
            throw VSliceError(.processing, "check Slurm", reason: "the controller does not answer (squeue: \(said)); nothing was started")
        }
    }

    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])] {
        if staysUp { return try submitWorkers(indices: indices, parallel: parallel, job: job) }
        let script = try Self.writeScript(job: job)
        var made: [(id: String, indices: [Int])] = []
        for array in Self.arrays(indices, maxArraySize: Self.maxArraySize()) {
            do {
                let id = try sbatch(array, parallel: parallel, script: script, job: job)
                made.append((id, array.indices))
            } catch {
                // All or nothing: the arrays already submitted are cancelled, so that none runs unrecorded.
                for m in made { _ = try? ExternalCommand.run("scancel", [m.id], timeout: 60) }
                throw error
            }
        }
        return made
    }

    /// `segment.sbatch`: runs the element's segment, BASE (its first argument) + SLURM_ARRAY_TASK_ID.
    private static func writeScript(job: EncodeJob) throws(VSliceError) -> String {
        let work = job.workDir
        let script = (work as NSString).appendingPathComponent("segment.sbatch")
        let body = """
            #!/bin/sh
            # One segment of vslice task \(job.task.id): index $1 (the array's base, default 0) + SLURM_ARRAY_TASK_ID.
            exec \(ExternalCommand.quote(ExternalCommand.currentExecutable)) segment --work-dir \(ExternalCommand.quote(work)) \\
                --index "$(( ${1:-0} + SLURM_ARRAY_TASK_ID ))"

            """
        try WorkFolder.writeAtomically(Data(body.utf8), to: script)
        chmod(script, 0o755)
        return script
    }

    /// One `sbatch` of one array; returns its job ID.
    func sbatch(_ array: (base: Int, indices: [Int]), parallel: Int, script: String, job: EncodeJob) throws(VSliceError) -> String {
        let work = job.workDir
        let args = ["--parsable", "--job-name=\(Self.jobName(task: job.task.id))", "--no-requeue",
                    "--array=\(Self.arraySpec(array.indices.map { $0 - array.base }))%\(max(1, parallel))",
                    "--output=\((work as NSString).appendingPathComponent("slurm-%A_%a.out"))",
                    "--chdir=\(work)"] + extraArgs + [script, String(array.base)]
        let r = try ExternalCommand.run("sbatch", args, timeout: 120)
        let id = r.stdout.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard r.status == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw VSliceError(.processing, "submit to slurm", path: work,
                              reason: "sbatch \(r.status == 0 ? "gave no job ID" : "exited \(r.status)"): "
                                  + (r.stderr + r.stdout).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return id
    }

    /// The cluster's `MaxArraySize` (`scontrol show config`), read at each submission; Slurm's default when
    /// `scontrol` is missing or does not say.
    static func maxArraySize() -> Int {
        guard ExternalCommand.find("scontrol") != nil,
              let r = try? ExternalCommand.run("scontrol", ["show", "config"], timeout: 60), r.status == 0 else { return defaultMaxArraySize }
        return maxArraySize(config: r.stdout) ?? defaultMaxArraySize
    }

    /// `MaxArraySize = N` of `scontrol show config`'s output.
    static func maxArraySize(config: String) -> Int? {
        for line in config.split(separator: "\n") {
            let f = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if f.count == 2, f[0] == "MaxArraySize", let n = Int(f[1]), n > 0 { return n }
        }
        return nil
    }

    /// The indices as arrays whose own indices (index − base) stay below `maxArraySize`, ascending.
    static func arrays(_ indices: [Int], maxArraySize: Int) -> [(base: Int, indices: [Int])] {
        var out: [(base: Int, indices: [Int])] = []
        for i in Set(indices).sorted() {
            if let last = out.last, i - last.base < maxArraySize {
                out[out.count - 1].indices.append(i)
            } else {
                out.append((i, [i]))
            }
        }
        return out
    }

    func inFlight(job: EncodeJob) -> [Int: ElementSighting]? {
        staysUp ? Self.workerSightings(task: job.task.id, workDir: job.workDir) : inFlight(task: job.task.id)
    }

    func inFlight(task: TaskID) -> [Int: ElementSighting]? {
        guard let r = try? ExternalCommand.run("squeue", ["--noheader", "--array", "--name=\(Self.jobName(task: task))",
                                                          "--format=%K|%T|%A|%F|%N|%o"], timeout: 60), r.status == 0 else { return nil }
        return Self.sightings(squeue: r.stdout)
    }

    /// `squeue --format=%K|%T|%A|%F|%N|%o` lines as sightings by segment index (the array index + the base the
    /// command ends with).
    static func sightings(squeue text: String) -> [Int: ElementSighting] {
        var out: [Int: ElementSighting] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 6, let k = Int(f[0]) else { continue }
            let base = f[5].split(separator: " ").last.flatMap { Int($0) } ?? 0
            let state: ElementState = ["RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"]
                .contains(f[1]) ? .running : .queued
            let s = ElementSighting(state: state, node: f[4].isEmpty ? nil : f[4], job: f[2], arrayJob: f[3], arrayIndex: k)
            // One index may appear twice (an old element still completing, a resubmitted one queued): running wins.
            if out[base + k]?.state != .running { out[base + k] = s }
        }
        return out
    }

    func nodeTrouble(_ nodes: Set<String>) -> [String: String] {
        guard ExternalCommand.find("sinfo") != nil,
              let r = try? ExternalCommand.run("sinfo", ["--noheader", "--Node", "--nodes=\(nodes.sorted().joined(separator: ","))",
                                                         "--format=%N|%T|%E"], timeout: 60), r.status == 0 else { return [:] }
        return Self.nodeTrouble(sinfo: r.stdout)
    }

    /// `sinfo --Node --format=%N|%T|%E` lines: the nodes down, drained, failing or not responding (`*`), with
    /// their state and reason ("down* (Not responding)").
    static func nodeTrouble(sinfo text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 3 else { continue }
            let state = f[1].lowercased()
            guard ["down", "drain", "fail", "unknown", "no_respond"].contains(where: state.hasPrefix) || state.hasSuffix("*") else { continue }
            out[f[0]] = state + (f[2].isEmpty || f[2] == "none" ? "" : " (\(f[2]))")
        }
        return out
    }

    func cancel(task: TaskID) { Self.cancel(task: task) }

    /// scancel every element of the task's arrays (`vslice cancel`, a cancelled coordinator): they share the
    /// job name, however many arrays there are.
    @discardableResult
    /// Cancels the task's arrays; nil when scancel did, else why not (with the command to run by hand).
    static func cancel(task: TaskID) -> String? {
        let command = "scancel --name=\(jobName(task: task))"
        guard ExternalCommand.find("scancel") != nil else { return "scancel is not on PATH; run `\(command)` where it is" }
        guard let r = try? ExternalCommand.run("scancel", ["--name=\(jobName(task: task))"], timeout: 60) else {
            return "scancel did not answer in 60 s; run `\(command)` when the controller answers"
        }
        guard r.status == 0 else {
            let said = r.stderr.split(whereSeparator: \.isNewline).last.map(String.init) ?? "exit \(r.status)"
            return "scancel failed (\(said)); run `\(command)`, or this cancel again, when the controller answers"
        }
        return nil
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

