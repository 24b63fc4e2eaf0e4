import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// `vslice gc`: removes what ended tasks leave on disk — work folders and merged part files.
public enum GarbageCollector {
    public struct Item: Codable, Sendable {
        public var task: TaskID
        /// The task's status (`unknown` for files of no task in this ledger).
        public var status: String
        /// Why the task's files may go.
        public var reason: String
        public var removed: [String]
        public var bytes: Int64
    }

    /// Tasks whose files are no longer needed: done, cancelled, and unfinished ones that can never resume (the
    /// input is gone or changed). With `includeUnfinished`, every unfinished task too (it is cancelled first).
    /// Tasks held by a live process are left alone.
    public static func collect(store: JobStore, includeUnfinished: Bool, dryRun: Bool) throws(VSliceError) -> [Item] {
        var items: [Item] = []
        for t in try store.tasks() where !store.isLeasedByOther(t) {
            let reason: String
            switch t.status {
            case .done, .cancelled: reason = t.status.rawValue
            default:
                if (try? Fingerprint.of(t.input)) != t.inputFingerprint { reason = "input gone or changed; cannot resume" }
                else if includeUnfinished { reason = "unfinished (--unfinished)" }
                else { continue }
            }
            let removed = files(of: t)
            if t.workDir.isEmpty && removed.isEmpty { continue }
            let bytes = removed.map(diskUsage).reduce(0, +)
            if !dryRun {
                if t.status.isResumable {
                    try store.cancel(t.id)
                    // Elements the scheduler could not be told to stop may still write there: kept for `vslice cancel`.
                    if ExecutorControl.cancelScheduled(t) != nil { continue }
                    ExecutorControl.waitUntilUnscheduled(t, timeout: 30)
                }
                try remove(t, store: store)
            }
            if !removed.isEmpty {
                items.append(Item(task: t.id, status: t.status.rawValue, reason: reason, removed: removed, bytes: bytes))
            }
        }
        return items
    }

    /// Work folders and part files directly in `dir` that are named like a task's (`.NAME.vslice-ID8`,
    /// `.NAME.vslice-ID8.part`) but belong to no task of this ledger (its database was deleted or replaced) — or
    /// to an ended task whose work the ledger says was removed (a worker still ending wrote into it again) — and
    /// whose newest file is older than `minAge` seconds (a live process of another ledger keeps writing its own).
    public static func orphans(in dir: String, store: JobStore, minAge: Double, dryRun: Bool) throws(VSliceError) -> [Item] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
            throw VSliceError(.usage, "gc", path: dir, reason: "cannot list the folder")
        }
        let tasks = try store.tasks()
        // Tasks whose files are still theirs: unfinished, or ended with their work not yet removed.
        let known = Set(tasks.filter { $0.status.isResumable || !$0.workDir.isEmpty }.map { $0.id.short })
        let ended = Dictionary(tasks.map { ($0.id.short, $0.status) }) { a, _ in a }
        let pattern = /^\..*\.vslice-([0-9a-f]{8})(\.part)?$/
        var items: [Item] = []
        for name in names.sorted() {
            guard let m = name.wholeMatch(of: pattern), !known.contains(String(m.1)) else { continue }
            let path = (dir as NSString).appendingPathComponent(name)
            let age = Date().timeIntervalSince1970 - newestModification(path)
            guard age >= minAge else { continue }
            let bytes = diskUsage(path)
            if !dryRun { try? fm.removeItem(atPath: path) }
            let status = ended[String(m.1)]
            let why = status == nil ? "no task in this job store" : "its task is \(status!.rawValue) and its work was removed"
            items.append(Item(task: TaskID(String(m.1)), status: status?.rawValue ?? "unknown",
                              reason: String(format: "%@; untouched for %.0f s", why, age), removed: [path], bytes: bytes))
        }
        return items
    }

    /// The latest modification time of a file, or of a folder and everything in it (Unix seconds).
    static func newestModification(_ path: String) -> Double {
        func mtime(_ p: String) -> Double {
            var st = stat()
            return lstat(p, &st) == 0 ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : 0
        }
        var newest = mtime(path)
        for child in (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? [] {
            newest = max(newest, mtime((path as NSString).appendingPathComponent(child)))
        }
        return newest
    }

    /// The files a task keeps on disk while unfinished: its work folder and its merged part file.
    static func files(of t: TaskRecord) -> [String] {
        [t.workDir, t.partFile].filter { !$0.isEmpty && FileManager.default.fileExists(atPath: $0) }
    }

    /// Removes one task's files and records that they are gone.
    public static func remove(_ t: TaskRecord, store: JobStore) throws(VSliceError) {
        for path in files(of: t) { try? FileManager.default.removeItem(atPath: path) }
        try store.markWorkRemoved(t.id)
    }

    static func diskUsage(_ path: String) -> Int64 {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
        if !isDir.boolValue { return FileOps.size(path) ?? 0 }
        let files = FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []
        return files.map { FileOps.size((path as NSString).appendingPathComponent($0)) ?? 0 }.reduce(0, +)
    }
}
