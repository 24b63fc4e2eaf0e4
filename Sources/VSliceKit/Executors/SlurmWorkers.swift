import Foundation
import VSliceLedger
import VSliceModel
import VSliceSupport

/// `--executor slurm --workers-stay-up`: the task's arrays hold workers, not elements. Element k of an array of W
/// runs `vslice segment --claim` (`WorkerLoop`): it claims the next element no worker holds (`ElementClaim`, in
/// the work folder) and runs it, then the next, until none is left; Slurm still decides where each worker runs.
/// The coordinator sees an element as running where the worker holding its claim runs, as queued while it is
/// unclaimed and some worker of the task is queued or running, and as gone when its claim's worker is no longer
/// in `squeue` (or no worker is): `ElementTracker` then calls it lost after 3 looks, and the coordinator
/// resubmits it — it takes back the claims of those elements whose workers Slurm no longer holds, and submits a
/// new array of as many workers as are due (at least one, at most `--jobs` less the live ones).
extension SlurmEngine {
    struct Worker: Equatable {
        var state: ElementState
        var node: String?
        /// The element job's ID (SLURM_JOB_ID once it runs).
        var job: String
        var arrayJob: String
        var arrayIndex: Int
        /// "ARRAYJOB_INDEX", as the worker names itself in its claims.
        var name: String { "\(arrayJob)_\(arrayIndex)" }
    }

    /// `squeue --format=%K|%T|%A|%F|%N|%o` lines as workers, by name.
    static func workers(squeue text: String) -> [String: Worker] {
        var out: [String: Worker] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 6, let k = Int(f[0]) else { continue }
            let running = ["RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"].contains(f[1])
            let w = Worker(state: running ? .running : .queued, node: f[4].isEmpty ? nil : f[4], job: f[2], arrayJob: f[3], arrayIndex: k)
            if out[w.name]?.state != .running { out[w.name] = w }
        }
        return out
    }

    /// The task's workers Slurm holds; nil when squeue did not answer.
    static func liveWorkers(task: TaskID) -> [String: Worker]? {
        guard let r = try? ExternalCommand.run("squeue", ["--noheader", "--array", "--name=\(jobName(task: task))",
                                                          "--format=%K|%T|%A|%F|%N|%o"], timeout: 60), r.status == 0 else { return nil }
        return workers(squeue: r.stdout)
    }

    /// The elements as the tracker sees them: running where their claim's live worker runs, queued while unclaimed
    /// and a worker is live, absent otherwise (claimed by a worker that is gone, or no worker left).
    static func workerSightings(workers: [String: Worker], claims: [Int: ElementClaim], elements: Range<Int>) -> [Int: ElementSighting] {
        var out: [Int: ElementSighting] = [:]
        for i in elements {
            if let c = claims[i] {
                guard let w = workers[c.worker] else { continue }
                out[i] = ElementSighting(state: w.state, node: w.node, job: w.job, arrayJob: w.arrayJob, arrayIndex: w.arrayIndex)
            } else if !workers.isEmpty {
                out[i] = ElementSighting(state: .queued)
            }
        }
        return out
    }

    /// What Slurm's workers hold of the task's elements; nil when squeue did not answer or the work folder has
    /// no work order.
    static func workerSightings(task: TaskID, workDir: String) -> [Int: ElementSighting]? {
        guard let workers = liveWorkers(task: task), let order = try? WorkOrder.read(workDir: workDir) else { return nil }
        return workerSightings(workers: workers, claims: ElementClaim.all(workDir: workDir), elements: 0..<order.elementCount)
    }

    /// The task's workers still queued (or finishing) once every element is done have nothing to claim: cancelled,
    /// so that none starts later on a work folder that is gone.
    func finished(task: TaskID) {
        if staysUp { Self.cancel(task: task) }
    }

    /// Takes back the claims on `indices` whose workers Slurm no longer holds, then submits one array of workers.
    func submitWorkers(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])] {
        let live = Self.liveWorkers(task: job.task.id)
        if let live {
            for i in indices {
                if let c = ElementClaim.read(i, workDir: job.workDir)?.claim, live[c.worker] == nil {
                    ElementClaim.release(i, workDir: job.workDir, holder: c)
                }
            }
        }
        let count = max(1, min(indices.count, max(1, parallel) - (live?.count ?? 0)))
        let script = try Self.writeWorkerScript(job: job)
        let id = try sbatch((base: 0, indices: Array(0..<count)), parallel: count, script: script, job: job)
        return [(id, indices)]
    }

    /// `workers.sbatch`: one worker that claims and runs element after element.
    private static func writeWorkerScript(job: EncodeJob) throws(VSliceError) -> String {
        let work = job.workDir
        let script = (work as NSString).appendingPathComponent("workers.sbatch")
        let body = """
            #!/bin/sh
            # A worker of vslice task \(job.task.id) that stays up: it claims the next element no worker holds and runs it,
            # until none is left.
            exec \(ExternalCommand.quote(ExternalCommand.currentExecutable)) segment --work-dir \(ExternalCommand.quote(work)) \\
                --claim --max-attempts \(job.options.maxAttempts) -q

            """
        try WorkFolder.writeAtomically(Data(body.utf8), to: script)
        chmod(script, 0o755)
        return script
    }
}
