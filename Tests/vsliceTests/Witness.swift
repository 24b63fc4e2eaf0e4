import Foundation
import Testing

/// Witnesses of work not done again that do not come from vslice's ledger: the files as the file system sees
/// them, and the runs a test processor logs.

/// A file's identity and content: a file encoded again is a new file renamed into place (another inode, another
/// modification time), whatever its bytes.
struct FileWitness: Equatable, CustomStringConvertible {
    var inode: UInt64
    var size: Int64
    var mtime: String
    var sha256: String

    init(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw OracleError("stat \(path): \(String(cString: strerror(errno)))") }
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtime = "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        let sum = try Proc.run("sha256sum", [path])
        guard sum.status == 0 else { throw OracleError("sha256sum \(path): \(sum.stderr)") }
        sha256 = String(sum.stdout.prefix { !$0.isWhitespace })
    }

    var description: String { "inode \(inode), \(size) B, mtime \(mtime), sha256 \(sha256.prefix(12))" }
}

enum Witness {
    /// The work folder of the task writing `output` (`.NAME.vslice-TASKID8` beside it, or in `root`: its
    /// --work-dir), if there is one.
    static func workFolder(of output: String, root: String? = nil) throws -> String? {
        let dir = root ?? (output as NSString).deletingLastPathComponent, name = (output as NSString).lastPathComponent
        let found = try FileManager.default.contentsOfDirectory(atPath: dir).filter { entry in
            var isDir: ObjCBool = false
            return entry.hasPrefix(".\(name).vslice-") && !entry.hasSuffix(".part")
                && FileManager.default.fileExists(atPath: dir + "/" + entry, isDirectory: &isDir) && isDir.boolValue
        }
        return found.first.map { dir + "/" + $0 }
    }

    /// The sealed files of a work folder whose names start with `prefix` and end with `.vseg` (the segments:
    /// `seg-`; the audio pieces: `audio-piece-`), by name.
    static func sealed(in workDir: String, prefix: String = "seg-") throws -> [String: FileWitness] {
        let names = try FileManager.default.contentsOfDirectory(atPath: workDir).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".vseg") }
        var files: [String: FileWitness] = [:]
        for name in names { files[name] = try FileWitness(workDir + "/" + name) }
        return files
    }

    /// The files of `before` that are no longer the same file (gone, or another inode, size, time or content).
    static func changed(_ before: [String: FileWitness], _ after: [String: FileWitness]) -> [String] {
        before.keys.sorted().filter { after[$0] != before[$0] }.map { "\($0): \(before[$0]!) → \(after[$0].map { "\($0)" } ?? "gone")" }
    }
}

/// A processor that passes its frames through (cat) and appends its segment's index to a log, one line per run
/// (not the check before any work): which segments were processed, and how often, as the program saw it. Its
/// files are in `dir/seglog/`.
struct SegmentLog {
    static let folder = "seglog"
    let command: String
    let path: String

    init(_ dir: URL) throws {
        let folder = dir.appendingPathComponent(Self.folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        path = folder.appendingPathComponent("segments.log").path
        let script = folder.appendingPathComponent("log-segment.sh").path
        try "if [ -z \"$VSLICE_CHECK\" ]; then echo \"$VSLICE_SEGMENT\" >> '\(path)'; fi\nexec cat\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        command = "sh \(script)"
    }

    /// The segments logged, in order.
    func runs() throws -> [Int] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
    }
}
