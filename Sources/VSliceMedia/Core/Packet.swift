import CFFmpeg
import VSliceModel
import VSliceSupport

/// An owned `AVPacket`, freed on deinit. Reused across reads: `unref()` between uses.
package final class Packet {
    package let ptr: UnsafeMutablePointer<AVPacket>

    package init() {
        guard let p = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        ptr = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = ptr
        av_packet_free(&p)
    }

    package func unref() { av_packet_unref(ptr) }

    /// Drops the packet's data and gives it a new, zero-padded payload of `size` bytes, filled by `fill`.
    package func setPayload(size: Int, path: String, _ fill: (UnsafeMutableRawBufferPointer) -> Void) throws(VSliceError) {
        av_packet_unref(ptr)
        try ffCheck(av_new_packet(ptr, Int32(size)), "allocate packet", path: path)
        if size > 0 { fill(UnsafeMutableRawBufferPointer(start: ptr.pointee.data, count: size)) }
    }

    /// The packet's flags (AV_PKT_FLAG_*), as stored in a packet file.
    package var flags: Int32 { get { ptr.pointee.flags } set { ptr.pointee.flags = newValue } }

    package var streamIndex: Int { Int(ptr.pointee.stream_index) }
    package var pts: Int64 { get { ptr.pointee.pts } set { ptr.pointee.pts = newValue } }
    package var dts: Int64 { get { ptr.pointee.dts } set { ptr.pointee.dts = newValue } }
    package var duration: Int64 { get { ptr.pointee.duration } set { ptr.pointee.duration = newValue } }
    package var size: Int { Int(ptr.pointee.size) }
    package var isKey: Bool { ptr.pointee.flags & AV_PKT_FLAG_KEY != 0 }
    package var isDiscard: Bool { ptr.pointee.flags & AV_PKT_FLAG_DISCARD != 0 }
    package var isCorrupt: Bool { ptr.pointee.flags & AV_PKT_FLAG_CORRUPT != 0 }
}

/// An owned `AVFrame`, freed on deinit. Reused across decodes: `unref()` between uses.
package final class Frame {
    package let ptr: UnsafeMutablePointer<AVFrame>

    package init() {
        guard let p = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        ptr = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVFrame>? = ptr
        av_frame_free(&p)
    }

    package func unref() { av_frame_unref(ptr) }

    package var pts: Int64 { get { ptr.pointee.pts } set { ptr.pointee.pts = newValue } }
    /// The decoder's best guess at the presentation time (the frame's `pts`, else guessed).
    package var bestEffortTimestamp: Int64 { ptr.pointee.best_effort_timestamp }
    /// A value of the frame's metadata (set by filters such as scdet), or nil.
    package func metadata(_ key: String) -> String? {
        av_dict_get(ptr.pointee.metadata, key, nil, 0).map { String(cString: $0.pointee.value) }
    }
    package var sampleCount: Int { Int(ptr.pointee.nb_samples) }
    /// The decoder met damaged data in this frame (and concealed it).
    package var isCorrupt: Bool { ptr.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 || ptr.pointee.decode_error_flags != 0 }
}
