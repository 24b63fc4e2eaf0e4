import Foundation
import VSliceSupport

/// What a one-segment worker (`vslice segment`) needs to encode any segment of a task, written by the
/// coordinator into the task's work folder as `task.json` when it plans. The worker reads only this file
/// and the input: never the job database.
public struct WorkOrder: Codable, Sendable {
    public static let fileName = "task.json"
    /// 2: frame times and keyframes as runs (`VideoIndex`); a worker of version 1 refuses it by its version.
    public static let currentVersion = 2
    /// Versions this vslice reads.
    package static let readable = 1...2

    public var version: Int
    public var task: TaskID
    /// Absolute path of the input, as every node sees it (shared filesystem).
    public var input: String
    /// `Fingerprint.of(input)` when the task was planned; a worker refuses an input that differs.
    public var fingerprint: String
    public var settings: TranscodeSettings
    public var plan: Plan
    /// The video stream's frame timing (time base, every frame's pts, keyframes), as the probe found it.
    public var index: VideoIndex
    /// Segment files by index, relative to the work folder.
    public var segmentFiles: [String]
    /// Seconds without a decoded frame after which a worker abandons its segment (exit 1).
    public var stallTimeout: Double
    /// The audio pieces, in order: element `plan.segments.count + k` is piece k (absent: none).
    public var audioPieces: [AudioPiece]?
    /// Their files, relative to the work folder.
    public var audioPieceFiles: [String]?

    /// Elements: the video segments, then the audio pieces.
    public var elementCount: Int { plan.segments.count + (audioPieces?.count ?? 0) }

    /// The audio piece element `i` is (nil: a video segment).
    package func audioPiece(ofElement i: Int) -> AudioPiece? {
        i >= plan.segments.count ? audioPieces?[i - plan.segments.count] : nil
    }

    /// Element `i`'s sealed file, relative to the work folder.
    package func file(ofElement i: Int) -> String {
        i >= plan.segments.count ? audioPieceFiles![i - plan.segments.count] : segmentFiles[i]
    }

    package init(task: TaskID, input: String, fingerprint: String, settings: TranscodeSettings, plan: Plan, index: VideoIndex,
         stallTimeout: Double, audioPieces: [AudioPiece] = []) {
        version = Self.currentVersion
        self.task = task
        self.input = input
        self.fingerprint = fingerprint
        self.settings = settings
        self.plan = plan
        self.index = index
        segmentFiles = plan.segments.map { WorkFolder.segmentFileName($0.index) }
        self.stallTimeout = stallTimeout
        self.audioPieces = audioPieces.isEmpty ? nil : audioPieces
        audioPieceFiles = audioPieces.isEmpty ? nil : audioPieces.map { WorkFolder.audioPieceFileName($0.order) }
    }

    /// A work folder that is missing or not a folder is a usage error naming it (checked before anything else
    /// `vslice segment` looks at).
    public static func checkFolder(workDir: String) throws(VSliceError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: workDir, isDirectory: &isDir) else {
            throw VSliceError(.usage, "open work folder", path: workDir, reason: "the folder does not exist")
        }
        guard isDir.boolValue else {
            throw VSliceError(.usage, "open work folder", path: workDir, reason: "not a folder")
        }
    }

    /// Reads `DIR/task.json`. A missing or unreadable order is a usage error: the folder is not a planned task's.
    public static func read(workDir: String) throws(VSliceError) -> WorkOrder {
        try checkFolder(workDir: workDir)
        let path = (workDir as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VSliceError(.usage, "read work order", path: path,
                              reason: "no \(fileName) here: not the work folder of a planned task")
        }
        let order: WorkOrder
        do { order = try JSONDecoder().decode(WorkOrder.self, from: data) } catch {
            throw VSliceError(.usage, "read work order", path: path, reason: "not a vslice work order: \(plainReason(error))")
        }
        guard readable.contains(order.version) else {
            throw VSliceError(.usage, "read work order", path: path,
                              reason: "work order version \(order.version); this vslice reads versions \(readable.lowerBound)–\(readable.upperBound)")
        }
        guard order.segmentFiles.count == order.plan.segments.count else {
            throw VSliceError(.usage, "read work order", path: path, reason: "segment files do not match the plan")
        }
        return order
    }

    /// Writes `DIR/task.json` atomically.
    package func write(workDir: String) throws(VSliceError) {
        let data: Data
        do { data = try JSONEncoder().encode(self) } catch {
            throw VSliceError(.processing, "write work order", path: workDir, reason: plainReason(error))
        }
        try WorkFolder.writeAtomically(data, to: (workDir as NSString).appendingPathComponent(Self.fileName))
    }
}
