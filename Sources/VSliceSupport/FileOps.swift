import Foundation

/// Small filesystem operations with errors in vslice's terms.
package enum FileOps {
    /// fsyncs a file, returns its size.
    @discardableResult
    package static func fsync(path: String) throws(VSliceError) -> Int64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw VSliceError(.processing, "open for fsync", path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if Glibc.fsync(fd) != 0 {
            throw VSliceError(.processing, "fsync", path: path, reason: String(cString: strerror(errno)))
        }
        var st = stat()
        fstat(fd, &st)
        return Int64(st.st_size)
    }

    /// A file's size, or nil when it does not exist.
    package static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// "device:inode:size:mtime" of a file, or nil: tells one file from another across a rename.
    package static func identity(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    /// "size:adler32" of a file's whole content, or nil when it cannot be read: tells a merged file from one
    /// damaged after it was written.
    package static func signature(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var sum: UInt32 = 1
        var size: Int64 = 0
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            sum = Adler32.update(sum, buffer, n)
            size += Int64(n)
        }
        return "\(size):\(String(sum, radix: 16))"
    }

    package static func fsyncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = Glibc.fsync(fd); close(fd) }
    }

    /// Moves `tmp` to `target`. Without `replace`, fails (exit 4) if target exists, atomically (link+unlink).
    package static func publish(_ tmp: String, to target: String, replace: Bool) throws(VSliceError) {
        if replace {
            if rename(tmp, target) != 0 {
                throw VSliceError(.processing, "publish", path: target, reason: String(cString: strerror(errno)))
            }
        } else {
            if link(tmp, target) != 0 {
                let e = errno
                if e == EEXIST {
                    throw VSliceError(.outputExists, "publish", path: target, reason: "output exists (use --force to replace it)")
                }
                throw VSliceError(.processing, "publish", path: target, reason: String(cString: strerror(e)))
            }
            unlink(tmp)
        }
        fsyncDirectory((target as NSString).deletingLastPathComponent.isEmpty ? "." : (target as NSString).deletingLastPathComponent)
    }
}

