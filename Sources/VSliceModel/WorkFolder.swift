import Foundation
import VSliceSupport

/// Names inside a task's work folder, and the atomic write every file there that other processes read uses.
public enum WorkFolder {
    public static func segmentFileName(_ index: Int) -> String { String(format: "seg-%05d.vseg", index) }
    /// `audio-piece-NNNNN.vseg`: audio piece N's sealed packet file.
    public static func audioPieceFileName(_ order: Int) -> String { String(format: "audio-piece-%05d.vseg", order) }

    /// `ana-NNNNN.out`: segment N's analysis artifact (the `--analyze` program's stdout), sealed by its commit.
    public static func analysisFileName(_ index: Int) -> String { String(format: "ana-%05d.out", index) }
    /// `ana-NNNNN.analyze.log`: the `--analyze` program's stderr for segment N.
    public static func analysisLogName(_ index: Int) -> String { String(format: "ana-%05d.analyze.log", index) }
    /// `loud-NNNNN.json`: audio piece N's loudness measurement (`--loudness`), sealed by its commit.
    public static func loudnessFileName(_ order: Int) -> String { String(format: "loud-%05d.json", order) }
    /// `context.out`: the `--reduce` program's stdout, the global result every processor reads (`VSLICE_CONTEXT`).
    public static let contextFileName = "context.out"
    /// `reduce.log`: the `--reduce` program's stderr.
    public static let reduceLogName = "reduce.log"

    /// `seg-NNNNN.process.log`: the `--process` program's stderr, every attempt's appended.
    public static func processLogName(_ index: Int) -> String { String(format: "seg-%05d.process.log", index) }

    /// `seg-NNNNN.progress`: "TRACE FRAMES", the running attempt's frames so far (for the progress bar only).
    package static func progressFileName(_ index: Int) -> String { String(format: "seg-%05d.progress", index) }

    /// The running attempt and its frames so far, as its worker last reported them.
    package static func progress(workDir: String, segment: Int) -> (trace: TraceID, frames: Int)? {
        guard let data = FileManager.default.contents(atPath: (workDir as NSString).appendingPathComponent(progressFileName(segment))),
              let text = String(data: data, encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: \.isWhitespace)
        guard f.count == 2, let n = Int(f[1]) else { return nil }
        return (TraceID(String(f[0])), n)
    }

    /// `seg-NNNNN.trace-UUID.json`: one per worker attempt.
    package static func traceRecordName(segment: Int, trace: TraceID) -> String {
        String(format: "seg-%05d.trace-", segment) + trace.rawValue + ".json"
    }

    /// Writes `data` to `path` so that readers see the old file, or none, or the whole new one: a temporary
    /// file in the same folder, fsynced, renamed over `path`, and the folder fsynced (without `durable`, a file
    /// worth nothing after a crash: no fsync).
    package static func writeAtomically(_ data: Data, to path: String, durable: Bool = true) throws(VSliceError) {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw VSliceError(.processing, "write", path: path, reason: String(cString: strerror(errno)))
        }
        var failure: String? = nil
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil && durable && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if failure == nil && rename(tmp, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(tmp)
            throw VSliceError(.processing, "write", path: path, reason: failure)
        }
        if durable { FileOps.fsyncDirectory(dir) }
    }
}


extension WorkFolder {
    /// Refuses a folder this process cannot create files in (workers write their segments there).
    package static func checkWritable(_ dir: String) throws(VSliceError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "check work folder", path: dir, reason: "the work folder root does not exist or is not a folder")
        }
        if let e = writeRefusal(dir) {
            throw VSliceError(.usage, "check work folder", path: dir,
                              reason: "not writable (\(String(cString: strerror(e)))): the workers write their segments there")
        }
    }

    /// Creates and removes a file in `dir`: nil when that worked, else the errno. Permission bits do not tell
    /// everything (a read-only mount, sysfs, an ACL or a FUSE file system refuse what they allow).
    package static func writeRefusal(_ dir: String) -> Int32? {
        let probe = (dir as NSString).appendingPathComponent(".vslice-write-check-\(getpid())-\(UUID().uuidString.prefix(8))")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return errno }
        close(fd)
        unlink(probe)
        return nil
    }
}

