import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Frames on their way into a processor's stdin: a header or FRAME line, then each frame's planes written
/// straight from the frame's own memory (its rows gathered by `writev`) — nothing is copied on this side.
/// Holds at most what one `queue` call gave it until it is written.
package final class PipeWriter {
    private var chunks: [(base: UnsafeRawPointer, count: Int)] = []
    private var next = 0
    private var offsetInNext = 0
    /// What the chunks point into: frames and byte buffers kept alive until written.
    private var owners: [AnyObject] = []
    /// Bytes of the largest write(v) call, so one call can fill a pipe of 1 MiB.
    private static let batch = 1024

    package var isEmpty: Bool { next >= chunks.count }

    /// Queues `text`'s bytes.
    package func queue(_ text: String) {
        let bytes = ByteBox(Array(text.utf8))
        owners.append(bytes)
        bytes.bytes.withUnsafeBytes { chunks.append(($0.baseAddress!, $0.count)) }
    }

    /// Queues the planes of `frame` (of `format`), row by row where its lines are padded.
    package func queue(_ frame: Frame, format: AVPixelFormat) throws(VSliceError) {
        let held = Frame()
        try ffCheck(av_frame_ref(held.ptr, frame.ptr), "hold a frame for the processor")
        owners.append(held)
        let f = held.ptr.pointee
        guard let desc = av_pix_fmt_desc_get(format) else { return }
        let planes = Int(av_pix_fmt_count_planes(format))
        withUnsafePointer(to: f.data) { dataTuple in
            withUnsafePointer(to: f.linesize) { lineTuple in
                dataTuple.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { data in
                    lineTuple.withMemoryRebound(to: Int32.self, capacity: 8) { lines in
                        for p in 0..<planes {
                            let rowBytes = Int(av_image_get_linesize(format, f.width, Int32(p)))
                            let chroma = p == 1 || p == 2
                            let rows = chroma ? (Int(f.height) + (1 << desc.pointee.log2_chroma_h) - 1) >> desc.pointee.log2_chroma_h
                                : Int(f.height)
                            guard let base = data[p] else { continue }
                            let stride = Int(lines[p])
                            if stride == rowBytes {
                                chunks.append((UnsafeRawPointer(base), rowBytes * rows))
                            } else {
                                for r in 0..<rows { chunks.append((UnsafeRawPointer(base + r * stride), rowBytes)) }
                            }
                        }
                    }
                }
            }
        }
    }

    package enum Outcome { case wrote, full, broken }

    /// Writes what the pipe takes now. `.broken`: the reader is gone (EPIPE); what was queued is dropped.
    package func write(to fd: Int32) -> Outcome {
        while !isEmpty {
            var iov: [iovec] = []
            var k = next
            while k < chunks.count && iov.count < Self.batch {
                let skip = k == next ? offsetInNext : 0
                iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: chunks[k].base + skip), iov_len: chunks[k].count - skip))
                k += 1
            }
            let n = writev(fd, iov, Int32(iov.count))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return .full }
                drop()
                return .broken
            }
            advance(by: n)
        }
        drop()
        return .wrote
    }

    private func advance(by written: Int) {
        var left = written
        while left > 0 && next < chunks.count {
            let rest = chunks[next].count - offsetInNext
            if left >= rest {
                left -= rest
                next += 1
                offsetInNext = 0
            } else {
                offsetInNext += left
                left = 0
            }
        }
    }

    /// Forgets everything queued (and releases the frames held).
    package func drop() {
        chunks.removeAll(keepingCapacity: true)
        owners.removeAll()
        next = 0
        offsetInNext = 0
    }

    private final class ByteBox {
        package let bytes: [UInt8]
        package init(_ b: [UInt8]) { bytes = b }
    }
}

/// A processor's stdout read into whole frames: a Y4M stream (its header line, then a FRAME line and the planes
/// of each frame) or raw frames. Lines are read a few bytes at a time (they are short and rare); each frame's
/// planes are read straight into a buffer of its own, which becomes the frame's memory.
package final class PipeReader {
    package enum Item {
        /// The Y4M header line (without its newline); call `expect(frameBytes:)` before reading on.
        case header(String)
        /// A whole frame's bytes.
        case frame(UnsafeMutablePointer<AVBufferRef>)
    }

    private enum State { case header, tag, payload }
    private var state: State
    private var line: [UInt8] = []
    private var buffer: UnsafeMutablePointer<AVBufferRef>?
    private var filled = 0
    /// Frame buffers are reused once the encoder is done with them (a fresh 3 MB buffer per 1080p frame costs
    /// the kernel hundreds of page faults each).
    private var pool: OpaquePointer?
    package private(set) var frameBytes: Int
    private let y4m: Bool
    /// Frames read whole so far.
    package private(set) var frames = 0
    /// Raw frames: the first frame whose bytes start with a line of text, and the text (a `print` to stdout
    /// shifts every frame after it: how the stream ends tells whether it was one).
    package private(set) var textInFrame: (line: String, frame: Int)?

    /// `y4m`: a header first, and a FRAME line before each frame; else raw frames of `frameBytes`.
    package init(y4m: Bool, frameBytes: Int = 0) {
        self.y4m = y4m
        state = y4m ? .header : .payload
        self.frameBytes = 0
        if frameBytes > 0 { expect(frameBytes: frameBytes) }
    }

    deinit {
        av_buffer_unref(&buffer)
        av_buffer_pool_uninit(&pool)
    }

    /// The size of every frame, once the header said it.
    package func expect(frameBytes: Int) {
        guard frameBytes != self.frameBytes || pool == nil else { return }
        self.frameBytes = frameBytes
        av_buffer_pool_uninit(&pool)
        pool = av_buffer_pool_init(frameBytes, nil)
    }

    /// Bytes read of an unfinished line or frame (what a stream that ends now leaves cut).
    package var partialBytes: Int { line.count + filled }

    /// A stream ended whole: the next bytes are another stream's header (`--process-persistent`).
    package func nextStream() {
        if y4m { state = .header }
    }

    /// Forgets what was read of an unfinished stream (its program is gone).
    package func reset() {
        line.removeAll(keepingCapacity: true)
        av_buffer_unref(&buffer)
        filled = 0
        state = y4m ? .header : .payload
    }

    package enum Outcome { case item(Item), wouldBlock, endOfFile }

    /// Reads until an item is whole, the pipe is empty, or it ends.
    package func read(from fd: Int32) throws(VSliceError) -> Outcome {
        while true {
            switch state {
            case .header, .tag:
                if let done = try readLine(fd) { return done }
                let text = String(decoding: line, as: UTF8.self)
                if let stray = Self.textMessage(line, after: frames) { throw malformedOutput(stray) }
                line.removeAll(keepingCapacity: true)
                if state == .header {
                    state = .tag
                    return .item(.header(text))
                }
                guard text.hasPrefix("FRAME") else { throw malformedOutput("a frame does not start with FRAME ('\(text.prefix(40))')") }
                if text.split(separator: " ").dropFirst().contains(where: { ["W", "H", "C"].contains($0.first) }) {
                    throw malformedOutput("the processor changed its frame size or format mid-stream ('\(text.prefix(60))')")
                }
                state = .payload
            case .payload:
                guard frameBytes > 0 else { return .wouldBlock }
                if buffer == nil {
                    guard let b = av_buffer_pool_get(pool) else {
                        throw VSliceError(.processing, "read the processor's output", reason: "out of memory")
                    }
                    buffer = b
                    filled = 0
                }
                let n = Glibc.read(fd, buffer!.pointee.data + filled, frameBytes - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
                    return .endOfFile
                }
                if n == 0 { return .endOfFile }
                filled += n
                if filled == frameBytes {
                    let whole = buffer!
                    if !y4m && textInFrame == nil,
                       let t = Self.textLine(UnsafeBufferPointer(start: whole.pointee.data, count: min(frameBytes, 300)), newline: true) {
                        textInFrame = (t, frames)
                    }
                    frames += 1
                    buffer = nil
                    filled = 0
                    state = y4m ? .tag : .payload
                    return .item(.frame(whole))
                }
            }
        }
    }

    /// Reads a line: nil once it is whole (in `line`), else how the read ended. A FRAME line is asked for six
    /// bytes at once ("FRAME\n"), then byte by byte if it goes on; a header byte by byte.
    private func readLine(_ fd: Int32) throws(VSliceError) -> Outcome? {
        while line.last != 0x0A {
            if line.count >= Y4MHeader.maxLine { throw malformedOutput("a line of the output is longer than \(Y4MHeader.maxLine) bytes") }
            let want = state == .tag && line.count < 6 ? 6 - line.count : 1
            var chunk = [UInt8](repeating: 0, count: want)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? .wouldBlock : .endOfFile
            }
            if n == 0 { return .endOfFile }
            line.append(contentsOf: chunk[0..<n])
            // Not a header: read on to the end of the line (or what cannot be text), to say what it is.
            if state == .header && line[0] != UInt8(ascii: "Y") && (line.count >= 300 || !Self.mayBeText(line.last!)) {
                throw malformedOutput(Self.textMessage(line, after: 0) ?? "the output does not start with a YUV4MPEG2 header")
            }
        }
        line.removeLast()
        return nil
    }
}

// MARK: - Text where frames belong

extension PipeReader {
    /// What a stream that ends now leaves cut, when it is text: the line a program printed on stdout, or the
    /// first raw frame that began with one (the print shifted every frame after it); nil when it is not text.
    package var strayText: String? {
        if let t = textInFrame { return Self.message(t.line, after: t.frame) }
        if filled > 0, let b = buffer, let t = Self.textLine(UnsafeBufferPointer(start: b.pointee.data, count: min(filled, 300))) {
            return Self.message(t, after: frames)
        }
        return Self.textMessage(line, after: frames)
    }

    /// The error for text written where a frame or a header belongs ("the processor wrote text on stdout: …").
    package static func textMessage(_ bytes: [UInt8], after frames: Int) -> String? {
        guard !(bytes.starts(with: Array("YUV4MPEG2".utf8)) || bytes.starts(with: Array("FRAME".utf8))),
              let t = textLine(bytes) else { return nil }
        return message(t, after: frames)
    }

    static func message(_ text: String, after frames: Int) -> String {
        "the processor wrote text on stdout: '\(text)' (\(frames == 0 ? "before its first frame" : "after its frame \(frames)")) — "
            + "stdout carries only frames: a processor must log to stderr (Python: print(..., file=sys.stderr))"
    }

    /// A byte that may be part of a line of text: printable ASCII, tab, CR, newline, or UTF-8 beyond ASCII.
    static func mayBeText(_ b: UInt8) -> Bool { b >= 0x20 && b != 0x7F || b == 0x09 || b == 0x0A || b == 0x0D }

    /// The line of text `bytes` start with (up to a newline, or all of them), when they are one: valid UTF-8,
    /// no control characters, at least two letters; with `newline`, ended by one. Shown shortened to 120
    /// characters.
    package static func textLine<C: Collection<UInt8>>(_ bytes: C, newline: Bool = false) -> String? {
        let head = bytes.prefix { $0 != 0x0A }
        guard head.count >= 2, head.count < 300 || head.count == bytes.count, !newline || head.count < bytes.count,
              head.allSatisfy(mayBeText),
              let s = String(validating: Array(head), as: UTF8.self) else { return nil }
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.unicodeScalars.filter({ CharacterSet.letters.contains($0) }).count >= 2 else { return nil }
        return trimmed.count > 120 ? String(trimmed.prefix(117)) + "..." : trimmed
    }
}
