import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// One task as `vslice status` lists it: its live status, how much of it is done, and how long ago it last
/// changed (or its holder last sent a heartbeat).
public struct TaskSummary: Sendable {
    public var task: TaskRecord
    /// The status as it is now (a dead holder's `running` task is `interrupted` or `stale`), with why.
    public var status: String
    public var note: String?
    /// Frames of the finished segments, and those the running segment attempts have done so far.
    public var framesDone: Int
    /// The running segment attempts' kept frames so far, by segment order (`TaskSummary.running`).
    public var runningFrames: [Int: Int]
    public var segmentsDone: Int
    public var segments: Int
    /// Seconds since the last change or heartbeat.
    public var ageSeconds: Double

    public init(_ t: TaskRecord, store: JobStore, now: Double = Date().timeIntervalSince1970) throws(VSliceError) {
        let segs = try store.segments(task: t.id)
        let done = segs.filter { $0.status == .done }
        let live = store.liveStatus(t)
        task = t
        status = live.status
        note = live.note
        runningFrames = live.status == TaskStatus.running.rawValue || live.status == "detached"
            ? Self.running(t, segments: segs, store: store) : [:]
        framesDone = done.map { $0.framesDone ?? 0 }.reduce(0, +) + runningFrames.values.reduce(0, +)
        segmentsDone = done.count
        segments = segs.count
        ageSeconds = now - max(t.updatedAt, t.leaseHeartbeat ?? 0)
    }

    /// The kept frames done so far inside the segments not yet done, by segment order: a local attempt's as the
    /// holder's heartbeat recorded it in its running trace; a worker's (Slurm, Ray, external) as its progress file
    /// in the work folder says (`seg-NNNNN.progress`), while its attempt has no trace record yet. Each at most
    /// the segment's planned frames.
    public static func running(_ t: TaskRecord, segments: [SegmentRecord], store: JobStore) -> [Int: Int] {
        var frames = (try? store.runningFrames(task: t.id)) ?? [:]
        let ended = Set(((try? store.traces(task: t.id)) ?? []).filter { $0.status != .running }.map(\.id))
        for s in segments where s.status != .done && frames[s.ord] == nil && !t.workDir.isEmpty {
            guard let p = WorkFolder.progress(workDir: t.workDir, segment: s.ord), !ended.contains(p.trace) else { continue }
            let record = (t.workDir as NSString).appendingPathComponent(WorkFolder.traceRecordName(segment: s.ord, trace: p.trace))
            if !FileManager.default.fileExists(atPath: record) { frames[s.ord] = p.frames }
        }
        var shown: [Int: Int] = [:]
        for s in segments where s.status != .done {
            if let n = frames[s.ord] { shown[s.ord] = min(n, s.framesPlanned) }
        }
        return shown
    }

    /// The newest `limit` tasks (0: all), newest first, and how many there are in all.
    public static func newest(store: JobStore, limit: Int, now: Double = Date().timeIntervalSince1970)
        throws(VSliceError) -> (tasks: [TaskSummary], total: Int) {
        let all = try store.tasks().sorted { $0.createdAt > $1.createdAt }
        let shown = limit == 0 ? all : Array(all.prefix(limit))
        return (try shown.map { (t) throws(VSliceError) in try TaskSummary(t, store: store, now: now) }, all.count)
    }

    /// Done frames as a percentage of the task's, to a tenth; nil while the task has no frame count.
    public var percent: Double? {
        task.framesTotal > 0 ? (1000 * Double(framesDone) / Double(task.framesTotal)).rounded() / 10 : nil
    }

    /// The percentage as a table shows it ("42.5%", "-" without a frame count).
    public var percentText: String {
        task.framesTotal > 0 ? String(format: "%.1f%%", 100 * Double(framesDone) / Double(task.framesTotal)) : "-"
    }

    /// The age as a table shows it, in its largest whole unit ("5s ago", "3m ago", "2h ago", "4d ago").
    public var ageText: String { Self.age(ageSeconds) }

    public static func age(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        return s < 60 ? "\(s)s ago" : s < 3600 ? "\(s / 60)m ago" : s < 86400 ? "\(s / 3600)h ago" : "\(s / 86400)d ago"
    }
}
