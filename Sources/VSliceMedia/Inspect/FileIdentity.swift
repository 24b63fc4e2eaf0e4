import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Which file a path named when it was looked at: device, inode, size and modification time. A file replaced
/// (`mv other in.mp4`) or rewritten in place has another identity.
public struct FileIdentity: Codable, Sendable, Equatable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64

    package init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        mtimeSeconds = Int64(st.st_mtim.tv_sec)
        mtimeNanoseconds = Int64(st.st_mtim.tv_nsec)
    }

    /// The identity of the file at `path` now (following symlinks), or nil when it cannot be looked at.
    public static func of(_ path: String) -> FileIdentity? {
        var st = stat()
        return stat(path, &st) == 0 ? FileIdentity(st) : nil
    }

    package static func of(fd: Int32) -> FileIdentity? {
        var st = stat()
        return fstat(fd, &st) == 0 ? FileIdentity(st) : nil
    }

    public var description: String { "device \(device), inode \(inode), \(size) bytes, mtime \(mtimeSeconds).\(mtimeNanoseconds)" }

    /// The error for an input that is no longer the file the task started with (exit 3: the output would mix two files).
    package static func changed(_ path: String) -> VSliceError {
        VSliceError(.input, "open input", path: path,
                    reason: "the input was replaced or modified while the task ran; nothing is published (run the command again to start over)")
    }
}

/// What identifies the input's content, cheaply: size, mtime, Adler-32 of the first and last MiB.
public enum Fingerprint {
    public static func of(_ path: String) throws(VSliceError) -> String {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw VSliceError(.input, "fingerprint", path: path, reason: "cannot open")
        }
        defer { try? fh.close() }
        var st = stat()
        guard stat(path, &st) == 0 else { throw VSliceError(.input, "fingerprint", path: path, reason: "cannot stat") }
        let size = Int64(st.st_size)
        let mib = 1 << 20
        var sum: UInt = 1
        let head = (try? fh.read(upToCount: mib)) ?? Data()
        if size > Int64(mib) { try? fh.seek(toOffset: UInt64(max(Int64(mib), size - Int64(mib)))) }
        let tail = size > Int64(mib) ? ((try? fh.readToEnd()) ?? Data()) : Data()
        for d in [head, tail] where !d.isEmpty {
            sum = d.withUnsafeBytes { UInt(av_adler32_update(UInt32(sum), $0.bindMemory(to: UInt8.self).baseAddress, $0.count)) }
        }
        return "\(size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(String(sum, radix: 16))"
    }
}

/// The regular files a `--process` command line names — its script, a weights file — and their content: an
/// edited script makes other frames, so it is part of the task's settings (a resume with it is refused).
public enum ProcessorFiles {
    /// The command's words (as `/bin/sh` splits simple words: quotes and backslashes honoured), and the value
    /// of each `--option=value` word, that name a regular file now.
    package static func paths(in command: String, directory: String? = nil) -> [String] {
        var words: [String] = [], word = "", quote: Character? = nil, escaped = false, inWord = false
        for c in command {
            if escaped { word.append(c); escaped = false; continue }
            if c == "\\" && quote != "'" { escaped = true; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
                continue
            }
            if c == "'" || c == "\"" { quote = c; inWord = true; continue }
            if c.isWhitespace || ";|&<>()".contains(c) {
                if inWord { words.append(word) }
                word = ""
                inWord = false
                continue
            }
            word.append(c)
            inWord = true
        }
        if inWord { words.append(word) }
        var out: [String] = []
        for w in words {
            for candidate in [w] + (w.hasPrefix("-") ? w.split(separator: "=", maxSplits: 1).dropFirst().map(String.init) : []) {
                var st = stat()
                if !candidate.isEmpty, stat(resolve(candidate, in: directory), &st) == 0, st.st_mode & S_IFMT == S_IFREG,
                   !out.contains(candidate) {
                    out.append(candidate)
                }
            }
        }
        return out
    }

    /// SHA-256 (hex) of each regular file `command` names, by the path as written.
    public static func hashes(_ command: String, in directory: String? = nil) throws(VSliceError) -> [String: String] {
        var out: [String: String] = [:]
        for p in paths(in: command, directory: directory) {
            guard let h = sha256(resolve(p, in: directory)) else {
                throw VSliceError(.usage, "check --process", path: p, reason: "cannot read a file the command names")
            }
            out[p] = h
        }
        return out
    }

    /// Refuses to run a processor whose named files differ from when the task was planned (a worker on a node
    /// that sees another script, or a script edited while the task runs).
    package static func check(_ process: ProcessorSettings?) throws(VSliceError) {
        guard let process else { return }
        let all = process.fileHashes.merging(process.folderHashes) { a, _ in a }
        for (path, hash) in all.sorted(by: { $0.key < $1.key }) where cachedSHA256(resolve(path, in: process.directory)) != hash {
            throw VSliceError(.input, "check --process", path: path,
                              reason: "the file changed since the task was planned (or this node sees another one); the processor would make other frames")
        }
    }

    /// A path as the command's shell sees it: relative ones from the command's folder.
    package static func resolve(_ path: String, in directory: String?) -> String {
        guard let directory, !path.hasPrefix("/") else { return path }
        return (directory as NSString).appendingPathComponent(path)
    }

    package static func sha256(_ path: String) -> String? {
        guard let fh = FileHandle(forReadingAtPath: path), let ctx = av_sha_alloc() else { return nil }
        defer { try? fh.close(); av_free(UnsafeMutableRawPointer(ctx)) }
        av_sha_init(ctx, 256)
        while true {
            let chunk: Data?
            do { chunk = try fh.read(upToCount: 1 << 20) } catch { return nil }
            guard let chunk, !chunk.isEmpty else { break }
            chunk.withUnsafeBytes { av_sha_update(ctx, $0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        }
        var digest = [UInt8](repeating: 0, count: 32)
        av_sha_final(ctx, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}
