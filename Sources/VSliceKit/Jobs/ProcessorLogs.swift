import Foundation
import VSliceLedger
import VSliceModel
import VSliceSupport

/// The `--process` program's stderr, one log per segment (`seg-NNNNN.process.log`, every attempt's appended):
/// written in the work folder; when the task succeeds and its work folder goes, the logs of segments that failed
/// an attempt (all of them with `--keep-logs`) are moved to `logs/TASK-ID/` beside the job store. `vslice logs
/// TASK [SEGMENT]` prints them wherever they are.
public enum ProcessorLogs {
    /// Where a finished task's kept logs are: `logs/TASK-ID` in the job store's folder.
    public static func keptFolder(store: JobStore, task: TaskID) -> String {
        (((store.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("logs") as NSString)
            .appendingPathComponent(task.rawValue)
    }

    /// How a message names a segment's log: the command that prints it, and its file.
    public static func named(task: TaskID, segment: Int) -> String {
        "the processor's log: `vslice logs \(task.short) \(segment)` (\(WorkFolder.processLogName(segment)))"
    }

    /// Before a done task's work folder is removed: moves the logs worth keeping — those of segments with more
    /// than one attempt, or every one with `all` — to `keptFolder`. Empty logs are not kept.
    static func keep(_ task: TaskRecord, store: JobStore, all: Bool) {
        guard let rows = try? store.segments(task: task.id) else { return }
        let fm = FileManager.default
        let target = keptFolder(store: store, task: task.id)
        for row in rows where all || row.attempts > 1 {
            let log = (task.workDir as NSString).appendingPathComponent(WorkFolder.processLogName(row.ord))
            guard let size = (try? fm.attributesOfItem(atPath: log))?[.size] as? Int, size > 0 else { continue }
            try? fm.createDirectory(atPath: target, withIntermediateDirectories: true)
            let dest = (target as NSString).appendingPathComponent(WorkFolder.processLogName(row.ord))
            try? fm.removeItem(atPath: dest)
            try? fm.moveItem(atPath: log, toPath: dest)
        }
    }

    /// A task's processor logs that exist now (in its work folder, or kept), by segment; only `segment`'s when given.
    public static func find(_ task: TaskRecord, store: JobStore, segment: Int? = nil) -> [(segment: Int, path: String)] {
        var out: [Int: String] = [:]
        for folder in [keptFolder(store: store, task: task.id), task.workDir] where !folder.isEmpty {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                guard name.hasPrefix("seg-"), name.hasSuffix(".process.log"),
                      let n = Int(name.dropFirst(4).dropLast(".process.log".count)), segment == nil || segment == n else { continue }
                out[n] = (folder as NSString).appendingPathComponent(name)
            }
        }
        return out.keys.sorted().map { ($0, out[$0]!) }
    }
}
