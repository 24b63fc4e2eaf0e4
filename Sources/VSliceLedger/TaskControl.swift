import Foundation
import VSliceModel
import VSliceSupport

/// What the commands that steer tasks decide: a task's live status, which tasks `resume --all` takes up, and
/// what cancelling one does. Policy lives here; the command line only parses and prints.
extension JobStore {
    /// A task's status as it is now: a `running` task whose process is gone is `interrupted`; one whose holder
    /// sends no heartbeat (stopped, or on another host and silent) is `stale`; with why.
    public func liveStatus(_ t: TaskRecord) -> (status: String, note: String?) {
        guard t.status == .running else { return (t.status.rawValue, nil) }
        if isLeasedByOther(t) { return (TaskStatus.running.rawValue, nil) }
        guard let pid = t.leasePid else {
            // `--detach`: the scheduler runs the elements, no coordinator watches them.
            if let kind = t.storedRequest?.executor.kind, kind == .slurm || kind == .ray {
                return ("detached", "its elements are \(kind == .ray ? "Ray" : "Slurm")'s; `vslice resume \(t.id.short)` collects them and finishes the task")
            }
            return (TaskStatus.interrupted.rawValue, "no process holds it")
        }
        if t.leaseHost == Host.name && kill(pid_t(pid), 0) != 0 && errno == ESRCH {
            return (TaskStatus.interrupted.rawValue, "its process \(pid) is gone")
        }
        let quiet = t.leaseHeartbeat.map { Int(Date().timeIntervalSince1970 - $0) } ?? 0
        return ("stale", "no heartbeat from process \(pid) on \(t.leaseHost ?? "?") for \(quiet) s")
    }

    /// The tasks `vslice resume --all` takes up: unfinished ones no live process holds, oldest first.
    public func resumableTasks() throws(VSliceError) -> [TaskRecord] {
        try tasks().filter { $0.status.isResumable && !isLeasedByOther($0) }
    }

    /// What `resume --all` takes up: the resumable tasks except those whose failure would repeat (bad input or
    /// options, a refused resume, a deterministic processing failure) — `vslice resume ID` still tries one.
    /// The second list is those passed over.
    public func tasksToResumeAll() throws(VSliceError) -> (resume: [TaskRecord], passedOver: [TaskRecord]) {
        let all = try resumableTasks()
        let repeats = { (t: TaskRecord) in t.status == .failed && t.failureDeterministic == true }
        return (all.filter { !repeats($0) }, all.filter(repeats))
    }

}
