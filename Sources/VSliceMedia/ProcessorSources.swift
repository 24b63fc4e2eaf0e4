import Foundation
import Synchronization
import VSliceModel
import VSliceSupport

/// The files a `--process` program runs from, hashed for the task's signature: the regular files its command
/// line names (the script) and those `--process-deps` names (weights elsewhere), strictly; and every file under
/// the folder of each file the command names, and under each folder `--process-deps` names — the modules a
/// script imports beside it. An edit to any of them refuses a resume, so a task never mixes two versions.
public struct ProcessorFileSet: Sendable, Equatable {
    /// Path as written → SHA-256, for the files named.
    public var named: [String: String] = [:]
    /// Path (the folder as written, then the path under it) → SHA-256, for the files found in the folders.
    public var beside: [String: String] = [:]
    /// What was not hashed, for a person (past the limits, a folder not looked through).
    public var notes: [String] = []
}

extension ProcessorFiles {
    /// At most this many files and bytes are hashed under the folders (the files named are always hashed).
    public static let folderFileLimit = 1000
    public static let folderByteLimit: Int64 = 1 << 30
    /// Entries looked at under the folders, at most (a script in a huge tree).
    static let visitLimit = 20_000

    /// Hashes what `command` and `deps` name, and what lies beside them (see `ProcessorFileSet`).
    public static func scan(_ command: String, deps: [String], in directory: String?) throws(VSliceError) -> ProcessorFileSet {
        var set = ProcessorFileSet()
        var folders: [(written: String, absolute: String)] = []
        for p in paths(in: command, directory: directory) {
            set.named[p] = try hashNamed(p, directory: directory, option: "--process")
            let folder = (p as NSString).deletingLastPathComponent
            let absolute = Paths.canonical(resolve(folder.isEmpty ? "." : folder, in: directory))
            if let why = notLookedThrough(absolute) {
                if let why { set.notes.append("--process: the folder of \(p) (\(absolute)) is not looked through: \(why); name the files the program runs from with --process-deps") }
                continue
            }
            folders.append((folder, absolute))
        }
        for d in deps {
            var st = stat()
            guard stat(resolve(d, in: directory), &st) == 0 else {
                throw VSliceError(.usage, "check --process-deps", path: d, reason: "no such file or folder")
            }
            if st.st_mode & S_IFMT == S_IFDIR {
                folders.append((d, Paths.canonical(resolve(d, in: directory))))
            } else {
                set.named[d] = try hashNamed(d, directory: directory, option: "--process-deps")
            }
        }
        var walk = FolderWalk(skipping: Set(set.named.keys.map { Paths.canonical(resolve($0, in: directory)) }))
        for f in folders.sorted(by: { $0.absolute < $1.absolute }) where !walk.covered(f.absolute) {
            walk.walk(f.absolute, written: f.written, into: &set.beside)
        }
        if walk.skippedFiles > 0 {
            set.notes.append("--process: \(walk.skippedFiles) files beside the program were not hashed (past \(folderFileLimit) files, "
                             + "\(folderByteLimit >> 30) GiB or \(visitLimit) entries): a change to them would not refuse a resume; "
                             + "name those it runs from with --process-deps")
        }
        return set
    }

    private static func hashNamed(_ p: String, directory: String?, option: String) throws(VSliceError) -> String {
        guard let h = cachedSHA256(resolve(p, in: directory)) else {
            throw VSliceError(.usage, "check \(option)", path: p, reason: "cannot read a file the command names")
        }
        return h
    }

    /// Why a named file's folder is not looked through: nil when it is; .some(nil) quietly (the system's folders
    /// and those on PATH: the interpreter's, `/usr/bin/python3`), .some(why) said (the home folder, the root).
    static func notLookedThrough(_ folder: String) -> String?? {
        let system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/proc", "/sys", "/dev", "/snap", "/nix", "/opt/conda/bin"]
        if system.contains(where: { folder == $0 || folder.hasPrefix($0 + "/") }) { return .some(nil) }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { Paths.canonical(String($0)) }
        if path.contains(folder) { return .some(nil) }
        if folder == "/" { return .some("it is the root folder") }
        if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty, Paths.canonical(home) == folder {
            return .some("it is the home folder")
        }
        return nil
    }

    /// What a change of does not make another program: hidden files, Python's byte code, logs, media (videos,
    /// sound, pictures: the clips and frames of a project folder, not its code).
    static func ignored(_ name: String) -> Bool {
        if name.hasPrefix(".") || name == "__pycache__" || name.hasPrefix("vslice.db") { return true }
        let ext = (name as NSString).pathExtension.lowercased()
        return ["pyc", "pyo", "log", "tmp", "swp", "part", "mp4", "m4v", "mkv", "mov", "webm", "avi", "ts", "mts", "m2ts",
                "mpg", "mpeg", "flv", "wmv", "y4m", "yuv", "wav", "mp3", "aac", "m4a", "flac", "opus", "ogg",
                "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "exr", "dpx"].contains(ext)
    }

    /// Files under the folders, bounded.
    struct FolderWalk {
        var skipping: Set<String>
        var walked: [String] = []
        var files = 0, bytes: Int64 = 0, visited = 0, skippedFiles = 0

        init(skipping: Set<String>) { self.skipping = skipping }

        func covered(_ folder: String) -> Bool { walked.contains { folder == $0 || folder.hasPrefix($0 + "/") } }

        mutating func walk(_ absolute: String, written: String, into out: inout [String: String]) {
            walked.append(absolute)
            visit(absolute, written: written, into: &out)
        }

        private mutating func visit(_ absolute: String, written: String, into out: inout [String: String]) {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: absolute)) ?? []).sorted()
            for name in names where !ProcessorFiles.ignored(name) {
                visited += 1
                let child = (absolute as NSString).appendingPathComponent(name)
                let shown = written.isEmpty || written == "." ? name : (written as NSString).appendingPathComponent(name)
                var st = stat(), lst = stat()
                guard lstat(child, &lst) == 0, stat(child, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    // Not through a link to a folder (a loop, or somewhere else entirely).
                    if lst.st_mode & S_IFMT == S_IFDIR && visited < ProcessorFiles.visitLimit { visit(child, written: shown, into: &out) }
                    continue
                }
                guard st.st_mode & S_IFMT == S_IFREG, !skipping.contains(child) else { continue }
                let size = Int64(st.st_size)
                if files >= ProcessorFiles.folderFileLimit || bytes + size > ProcessorFiles.folderByteLimit
                    || visited > ProcessorFiles.visitLimit {
                    skippedFiles += 1
                    continue
                }
                guard let h = ProcessorFiles.cachedSHA256(child) else { continue }
                files += 1
                bytes += size
                out[shown] = h
            }
        }
    }

    /// SHA-256 of the file at `path`, remembered for as long as the file keeps its identity (device, inode,
    /// size, mtime): a batch hashes a model's weights once, not once per input.
    static func cachedSHA256(_ path: String) -> String? {
        guard let id = FileIdentity.of(path) else { return nil }
        if let (known, h) = hashCache.withLock({ $0[path] }), known == id { return h }
        guard let h = sha256(path) else { return nil }
        if FileIdentity.of(path) == id { hashCache.withLock { $0[path] = (id, h) } }
        return h
    }

    private static let hashCache = Mutex<[String: (FileIdentity, String)]>([:])
}
