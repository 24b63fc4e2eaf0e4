import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// An output container being written, owned and freed on deinit. `finish()` writes the trailer, closes and
/// fsyncs the file.
package final class OutputFile {
    package let path: String
    private var ctx: UnsafeMutablePointer<AVFormatContext>
    private var headerWritten = false
    private var closed = false

    package init(path: String, format: String) throws(VSliceError) {
        self.path = path
        var c: UnsafeMutablePointer<AVFormatContext>? = nil
        let url = "file:" + path
        try ffCheck(avformat_alloc_output_context2(&c, nil, format, url), "create \(format) output", path: path)
        ctx = c!
        ctx.pointee.interrupt_callback.callback = vsliceInterruptCallback
        var opts: OpaquePointer? = nil
        av_dict_set(&opts, "protocol_whitelist", "file", 0)
        defer { av_dict_free(&opts) }
        let ret = avio_open2(&ctx.pointee.pb, url, AVIO_FLAG_WRITE, &ctx.pointee.interrupt_callback, &opts)
        // Every stored property is set: a throw from here runs deinit, which frees the context (freeing it
        // here as well was a double free).
        if ret < 0 {
            throw VSliceError(.processing, "open output", path: path, reason: ffErrorString(ret), code: ret)
        }
    }

    deinit {
        if !closed { avio_closep(&ctx.pointee.pb) }
        avformat_free_context(ctx)
    }

    package func addStream(_ params: StreamParams) throws(VSliceError) -> UnsafeMutablePointer<AVStream> {
        guard let st = avformat_new_stream(ctx, nil) else {
            throw VSliceError(.processing, "add stream", path: path, reason: "out of memory")
        }
        try params.apply(to: st.pointee.codecpar)
        st.pointee.time_base = params.timeBase.av
        return st
    }

    /// Sets the file's global tags.
    package func setTags(_ tags: Tags) {
        for t in tags { av_dict_set(&ctx.pointee.metadata, t.key, t.value, 0) }
    }

    /// Sets a stream's tags.
    package static func setTags(_ tags: Tags, on st: UnsafeMutablePointer<AVStream>) {
        for t in tags { av_dict_set(&st.pointee.metadata, t.key, t.value, 0) }
    }

    /// Adds chapters, moved earlier by `shift` seconds (the output's timeline starts there).
    package func addChapters(_ chapters: [SourceLayout.Chapter], shift: Double) throws(VSliceError) {
        guard !chapters.isEmpty else { return }
        let list = av_calloc(chapters.count, MemoryLayout<UnsafeMutablePointer<AVChapter>?>.size)?
            .assumingMemoryBound(to: UnsafeMutablePointer<AVChapter>?.self)
        guard let list else { throw VSliceError(.processing, "add chapters", path: path, reason: "out of memory") }
        ctx.pointee.chapters = list
        for (i, c) in chapters.enumerated() {
            guard let ch = av_mallocz(MemoryLayout<AVChapter>.size)?.assumingMemoryBound(to: AVChapter.self) else {
                throw VSliceError(.processing, "add chapters", path: path, reason: "out of memory")
            }
            let d = Int64((shift / av_q2d(c.timeBase)).rounded())
            ch.pointee.id = c.id
            ch.pointee.time_base = c.timeBase
            ch.pointee.start = max(0, c.start - d)
            ch.pointee.end = max(ch.pointee.start, c.end - d)
            for t in c.tags { av_dict_set(&ch.pointee.metadata, t.key, t.value, 0) }
            list[i] = ch
            ctx.pointee.nb_chapters = UInt32(i + 1)
        }
    }

    /// Adds an attachment stream (a font) with its file and tags (`filename`, `mimetype`).
    package func addAttachment(_ s: SourceLayout.Stream) throws(VSliceError) {
        guard let st = avformat_new_stream(ctx, nil), let data = s.data else {
            throw VSliceError(.processing, "add attachment", path: path, reason: "out of memory")
        }
        st.pointee.codecpar.pointee.codec_type = AVMEDIA_TYPE_ATTACHMENT
        st.pointee.codecpar.pointee.codec_id = s.codec
        guard let buf = av_mallocz(data.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) else {
            throw VSliceError(.processing, "add attachment", path: path, reason: "out of memory")
        }
        data.copyBytes(to: buf.assumingMemoryBound(to: UInt8.self), count: data.count)
        st.pointee.codecpar.pointee.extradata = buf.assumingMemoryBound(to: UInt8.self)
        st.pointee.codecpar.pointee.extradata_size = Int32(data.count)
        OutputFile.setTags(s.tags, on: st)
    }

    package var streamCount: Int { Int(ctx.pointee.nb_streams) }

    package func writeHeader(options: [(String, String)]) throws(VSliceError) {
        var dict: OpaquePointer? = nil
        for (k, v) in options { av_dict_set(&dict, k, v, 0) }
        defer { av_dict_free(&dict) }
        try ffCheck(avformat_write_header(ctx, &dict), "write header", path: path)
        headerWritten = true
    }

    /// Writes a packet whose timestamps are already in the stream's (muxer-chosen) time base.
    package func write(_ packet: Packet) throws(VSliceError) {
        try ffCheck(av_interleaved_write_frame(ctx, packet.ptr), "write packet", path: path)
    }

    /// Writes the trailer, closes and fsyncs the file; returns its size.
    package func finish() throws(VSliceError) -> Int64 {
        try ffCheck(av_write_trailer(ctx), "write trailer", path: path)
        closed = true
        try ffCheck(avio_closep(&ctx.pointee.pb), "close", path: path)
        return try FileOps.fsync(path: path)
    }
}
