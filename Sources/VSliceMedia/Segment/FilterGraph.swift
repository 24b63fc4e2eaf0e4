import CFFmpeg
import VSliceModel
import VSliceSupport

/// A video filter graph, `buffer → (user graph) → format → buffersink`, owned and freed on deinit.
package final class VideoFilterGraph {
    /// Builds (and drops) the graph for the source's video stream, so a bad `--vf` is refused before any
    /// work starts.
    package static func check(_ description: String, source: String, videoStream: Int) throws(VSliceError) {
        let input = try InputFile(path: source)
        let st = input.stream(videoStream)
        let decoder = try Decoder(stream: st, path: source, threads: 1)
        _ = try VideoFilterGraph(description: description, decoder: decoder.ctx, timeBase: st.pointee.time_base,
                                 frameRate: av_guess_frame_rate(input.ctx, st, nil), outputFormats: [], path: source)
    }

    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private let source: UnsafeMutablePointer<AVFilterContext>
    private let sink: UnsafeMutablePointer<AVFilterContext>
    package let path: String

    /// - Parameters:
    ///   - description: the user's filter graph (`--vf`), or nil for none.
    ///   - outputFormats: pixel formats the encoder accepts (`format` filter at the end), empty for any.
    package convenience init(description: String?, decoder: UnsafeMutablePointer<AVCodecContext>, timeBase: AVRational,
                     frameRate: AVRational = AVRational(num: 0, den: 1), outputFormats: [AVPixelFormat], path: String) throws(VSliceError) {
        let d = decoder.pointee
        try self.init(description: description, width: d.width, height: d.height, pixelFormat: d.pix_fmt,
                      sampleAspect: d.sample_aspect_ratio, timeBase: timeBase, frameRate: frameRate,
                      outputFormats: outputFormats, path: path)
    }

    /// `frameRate`: the source's nominal rate (as ffmpeg guesses it), which filters that pad or fill by
    /// duration (`tpad`) work in; 0/1 when unknown.
    package init(description: String?, width: Int32, height: Int32, pixelFormat: AVPixelFormat, sampleAspect: AVRational,
         timeBase: AVRational, frameRate: AVRational, outputFormats: [AVPixelFormat], path: String) throws(VSliceError) {
        self.path = path
        guard let g = avfilter_graph_alloc() else {
            throw VSliceError(.processing, "allocate filter graph", path: path, reason: "out of memory")
        }
        graph = g
        g.pointee.nb_threads = 1
        let sar = sampleAspect.num > 0 ? sampleAspect : AVRational(num: 0, den: 1)
        let args = "video_size=\(width)x\(height):pix_fmt=\(pixelFormat.rawValue):time_base=\(timeBase.num)/\(timeBase.den):pixel_aspect=\(sar.num)/\(sar.den)"
            + (frameRate.num > 0 && frameRate.den > 0 ? ":frame_rate=\(frameRate.num)/\(frameRate.den)" : "")
        var src: UnsafeMutablePointer<AVFilterContext>? = nil
        var snk: UnsafeMutablePointer<AVFilterContext>? = nil
        do {
            try ffCheck(avfilter_graph_create_filter(&src, avfilter_get_by_name("buffer"), "in", args, nil, g),
                        "create filter source", path: path)
            try ffCheck(avfilter_graph_create_filter(&snk, avfilter_get_by_name("buffersink"), "out", nil, nil, g),
                        "create filter sink", path: path)
        } catch {
            avfilter_graph_free(&graph)
            throw error
        }
        source = src!
        sink = snk!
        var chain = description?.trimmingCharacters(in: .whitespaces) ?? ""
        if !outputFormats.isEmpty {
            let names = outputFormats.compactMap { av_get_pix_fmt_name($0).map { String(cString: $0) } }
            chain += (chain.isEmpty ? "" : ",") + "format=pix_fmts=" + names.joined(separator: "|")
        }
        if chain.isEmpty { chain = "null" }
        var outputs = avfilter_inout_alloc()
        var inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        outputs!.pointee.name = av_strdup("in")
        outputs!.pointee.filter_ctx = source
        outputs!.pointee.pad_idx = 0
        outputs!.pointee.next = nil
        inputs!.pointee.name = av_strdup("out")
        inputs!.pointee.filter_ctx = sink
        inputs!.pointee.pad_idx = 0
        inputs!.pointee.next = nil
        let parsed = avfilter_graph_parse_ptr(g, chain, &inputs, &outputs, nil)
        if parsed < 0 {
            avfilter_graph_free(&graph)
            let why = parsed == vs_averror(EINVAL) || parsed == vs_averror(ENOENT)
                ? "not a valid filter graph: an unknown filter or a bad option (`ffmpeg -filters` lists the filters)"
                : ffErrorString(parsed)
            throw VSliceError(.usage, "parse --vf '\(description ?? "")'", reason: why, code: parsed)
        }
        let configured = avfilter_graph_config(g, nil)
        if configured < 0 {
            avfilter_graph_free(&graph)
            throw VSliceError(.usage, "configure --vf '\(description ?? "")'", reason: ffErrorString(configured), code: configured)
        }
    }

    deinit { avfilter_graph_free(&graph) }

    package var width: Int32 { av_buffersink_get_w(sink) }
    package var height: Int32 { av_buffersink_get_h(sink) }
    package var pixelFormat: AVPixelFormat { AVPixelFormat(rawValue: av_buffersink_get_format(sink)) }
    package var timeBase: AVRational { av_buffersink_get_time_base(sink) }
    package var sampleAspect: AVRational { av_buffersink_get_sample_aspect_ratio(sink) }
    /// The graph's output frame rate, if it states one (`fps=24` does; 0/1 when unknown).
    package var frameRate: AVRational { av_buffersink_get_frame_rate(sink) }

    /// Names of the filters in the graph (`fps`, `select`, …), including the ones vslice adds.
    package var filterNames: [String] {
        guard let g = graph else { return [] }
        var names: [String] = []
        for i in 0..<Int(g.pointee.nb_filters) {
            if let f = g.pointee.filters[i], let name = f.pointee.filter?.pointee.name { names.append(String(cString: name)) }
        }
        return names
    }

    /// Pushes a frame (nil: end of stream). The frame is left intact (its data is referenced).
    package func push(_ frame: Frame?) throws(VSliceError) {
        let ret = av_buffersrc_add_frame_flags(source, frame?.ptr, Int32(AV_BUFFERSRC_FLAG_KEEP_REF))
        do { try ffCheck(ret, "filter", path: path) } catch { throw error.deterministicUnlessTransient() }
    }

    /// Ends the input at `pts` (the graph's input time base): where the last frame pushed stops being shown,
    /// as ffmpeg's own end of stream does, so a rate change fills the last frame's whole duration.
    package func close(at pts: Int64) throws(VSliceError) {
        do { try ffCheck(av_buffersrc_close(source, pts, UInt32(AV_BUFFERSRC_FLAG_PUSH)), "filter", path: path) } catch {
            throw error.deterministicUnlessTransient()
        }
    }

    /// Pulls a filtered frame.
    package func pull(_ frame: Frame) throws(VSliceError) -> CodecResult {
        frame.unref()
        let ret = av_buffersink_get_frame(sink, frame.ptr)
        if ret == AVERROR_EAGAIN_ { return .again }
        if ret == AVERROR_EOF_ { return .endOfStream }
        do { try ffCheck(ret, "filter", path: path) } catch { throw error.deterministicUnlessTransient() }
        return .ok
    }
}
