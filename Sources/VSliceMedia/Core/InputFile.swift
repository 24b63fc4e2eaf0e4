import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Limits applied to untrusted input before anything is decoded.
public enum InputLimits {
    public static let maxStreams = 64
    public static let maxDimension: Int32 = 16384
    public static let probeSize: Int64 = 20_000_000
    public static let analyzeDurationMicroseconds: Int64 = 10_000_000
}

/// An opened input container. Only local files are opened: the path is always given to FFmpeg as
/// `file:<absolute path>` with `protocol_whitelist=file`, so names like `concat:a|b` or `http://x`
/// are plain file names, never protocols.
package final class InputFile {
    package let path: String
    package private(set) var ctx: UnsafeMutablePointer<AVFormatContext>
    /// Its interrupt callback's state: abandon switch and I/O deadline (kept alive as long as `ctx`).
    package let watch: WorkWatch

    /// With `expect`, the file is opened only if it is still that file (same device, inode, size, mtime), and
    /// FFmpeg reads the very file descriptor that was checked (through /proc/self/fd), so a file swapped in
    /// under the same name between the check and the open is never read.
    package init(path: String, watch: WorkWatch = WorkWatch(), expect: FileIdentity? = nil) throws(VSliceError) {
        self.path = path
        self.watch = watch
        try InputFile.checkReadable(path)
        var checkedFd: Int32 = -1
        defer { if checkedFd >= 0 { close(checkedFd) } }
        if let expect {
            checkedFd = open(path, O_RDONLY | O_CLOEXEC)
            guard checkedFd >= 0, FileIdentity.of(fd: checkedFd) == expect else { throw FileIdentity.changed(path) }
            // Without /proc the path is opened, just after the check.
            if !FileManager.default.fileExists(atPath: "/proc/self/fd/\(checkedFd)") { close(checkedFd); checkedFd = -1 }
        }
        guard let allocated = avformat_alloc_context() else {
            throw VSliceError(.processing, "open input", path: path, reason: "out of memory")
        }
        allocated.pointee.interrupt_callback.callback = vsliceInterruptCallback
        allocated.pointee.interrupt_callback.opaque = watch.opaque
        var opts: OpaquePointer? = nil
        av_dict_set(&opts, "protocol_whitelist", "file", 0)
        av_dict_set(&opts, "probesize", String(InputLimits.probeSize), 0)
        av_dict_set(&opts, "analyzeduration", String(InputLimits.analyzeDurationMicroseconds), 0)
        defer { av_dict_free(&opts) }
        var maybe: UnsafeMutablePointer<AVFormatContext>? = allocated
        let url = "file:" + (checkedFd >= 0 ? "/proc/self/fd/\(checkedFd)" : URL(fileURLWithPath: path).standardizedFileURL.path)
        let ret = watch.io { avformat_open_input(&maybe, url, nil, &opts) }
        // On failure avformat_open_input frees the context and nulls the pointer.
        guard ret >= 0, let opened = maybe else {
            try watch.check("open input", path: path)
            throw VSliceError(.input, "open input", path: path, reason: InputFile.describeOpenError(ret), code: ret)
        }
        // From here on every stored property is set, so a throw runs deinit, which closes the input.
        ctx = opened
        if opened.pointee.nb_streams > UInt32(InputLimits.maxStreams) {
            throw VSliceError(.input, "open input", path: path,
                              reason: "\(opened.pointee.nb_streams) streams is more than the limit of \(InputLimits.maxStreams)")
        }
        let info = watch.io { avformat_find_stream_info(opened, nil) }
        if info < 0 {
            try watch.check("read stream info", path: path)
            throw VSliceError(.input, "read stream info", path: path, reason: ffErrorString(info), code: info)
        }
    }

    deinit {
        var p: UnsafeMutablePointer<AVFormatContext>? = ctx
        avformat_close_input(&p)
    }

    private static func describeOpenError(_ ret: Int32) -> String {
        if ret == vs_averror_invaliddata() { return "not a media file FFmpeg can read (invalid data)" }
        return ffErrorString(ret)
    }

    /// Clear, early messages for the commonest problems, before FFmpeg gives a generic one.
    package static func checkReadable(_ path: String) throws(VSliceError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw VSliceError(.input, "open input", path: path, reason: "no such file")
        }
        if isDir.boolValue {
            throw VSliceError(.input, "open input", path: path, reason: "is a directory")
        }
        // A FIFO, socket or device can block a read forever or never end: regular files only.
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            throw VSliceError(.input, "open input", path: path, reason: "not a regular file (pipes and devices are not read)")
        }
        guard fm.isReadableFile(atPath: path) else {
            throw VSliceError(.input, "open input", path: path, reason: "permission denied")
        }
        let size = (try? fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        if size == 0 {
            throw VSliceError(.input, "open input", path: path, reason: "file is empty (0 bytes)")
        }
    }

    package var streamCount: Int { Int(ctx.pointee.nb_streams) }

    package func stream(_ index: Int) -> UnsafeMutablePointer<AVStream> {
        ctx.pointee.streams[index]!
    }

    /// Lets the demuxer skip the packets of every stream not in `streams`.
    package func keepOnly(_ streams: Int?...) {
        for i in 0..<streamCount where !streams.contains(i) {
            stream(i).pointee.discard = AVDISCARD_ALL
        }
    }

    /// The best stream of a type (`AVMEDIA_TYPE_VIDEO` / `AVMEDIA_TYPE_AUDIO`), or nil.
    package func bestStream(_ type: AVMediaType) -> Int? {
        let r = av_find_best_stream(ctx, type, -1, -1, nil, 0)
        return r >= 0 ? Int(r) : nil
    }

    /// Reads the next packet; false at end of file. Read errors other than EOF are input errors.
    package func read(into packet: Packet) throws(VSliceError) -> Bool {
        packet.unref()
        let ret = watch.io { av_read_frame(ctx, packet.ptr) }
        if ret == AVERROR_EOF_ { return false }
        if ret < 0 { try watch.check("read packet", path: path) }
        try ffCheck(ret, "read packet", path: path, kind: .input)
        return true
    }

    /// Seeks so that the next packet read on `streamIndex` is the keyframe at or before `timestamp`.
    package func seek(streamIndex: Int, timestamp: Int64) throws(VSliceError) {
        let ret = watch.io { avformat_seek_file(ctx, Int32(streamIndex), Int64.min, timestamp, timestamp, 0) }
        if ret < 0 { try watch.check("seek", path: path) }
        try ffCheck(ret, "seek to \(timestamp)", path: path, kind: .input)
    }
}
