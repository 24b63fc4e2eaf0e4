import CFFmpeg
import Foundation

/// Which file a path named when it was looked at: device, inode, size and modification time. A file replaced
/// (`mv other in.mp4`) or rewritten in place has another identity.
public struct FileIdentity: Codable, Sendable, Equatable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64

    init(_ st: stat) {
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

    static func of(fd: Int32) -> FileIdentity? {
        var st = stat()
        return fstat(fd, &st) == 0 ? FileIdentity(st) : nil
    }

    public var description: String { "device \(device), inode \(inode), \(size) bytes, mtime \(mtimeSeconds).\(mtimeNanoseconds)" }

    /// The error for an input that is no longer the file the task started with (exit 3: the output would mix two files).
    static func changed(_ path: String) -> VSliceError {
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
