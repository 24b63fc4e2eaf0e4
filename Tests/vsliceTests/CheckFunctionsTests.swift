import Foundation
import Testing

/// `scripts/check-functions`, which CI runs: it measures functions by their braces, not fooled by braces in
/// strings and comments, and fails past the limits (any over 100 lines, more than three over 80).
@Suite("check-functions script")
struct CheckFunctionsTests {
    static let script = Paths.packageRoot.appendingPathComponent("scripts/check-functions").path

    /// A function `lines` long (its `func` line to its closing brace), named `name`, whose body holds braces
    /// in every kind of literal and comment.
    static func function(_ name: String, lines: Int) -> String {
        let tricky = [
            #"let a = "}}} {" + "\(name.count) }""#,
            ##"let b = #"}"# + "\("{")""##,
            "// } a closing brace in a comment",
            "/* { nested /* } */ still a comment { */",
            #"let c = """"#,
            "    } a brace in a multi-line string {",
            #"    """"#,
            "let d = [1, 2].map { $0 + 1 }",
        ]
        precondition(lines >= tricky.count + 2)
        let filler = (0..<(lines - 2 - tricky.count)).map { "let v\($0) = \($0)" }
        return (["func \(name)() {"] + (tricky + filler).map { "    " + $0 } + ["}"]).joined(separator: "\n")
    }

    func run(_ files: [String: String]) throws -> Run {
        let dir = try Paths.scratch("check-functions")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return try Proc.run("python3", [Self.script, "--list", dir.path])
    }

    @Test("lengths are counted from the func line to its closing brace, braces in strings and comments ignored")
    func counts() throws {
        let text = "struct S {\n" + Self.function("long", lines: 81) + "\n" + Self.function("short", lines: 12)
            + "\n    init() {}\n    func labelled(a: Int,\n                  extension ext: String) -> Int {\n        func inner() {}\n        return 1\n    }\n}"
            + "\nprotocol P {\n    func required() -> Int\n    var x: Int { get }\n}\n"
        let r = try run(["a.swift": text])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("   81  ") && r.stdout.contains("S.long"))
        #expect(r.stdout.contains("   12  ") && r.stdout.contains("S.short"))
        #expect(r.stdout.contains("S.init"))
        // An argument label that is a declaration keyword declares nothing.
        #expect(r.stdout.contains("    5  ") && r.stdout.contains("S.labelled") && r.stdout.contains("S.inner"), "\(r.stdout)")
        #expect(!r.stdout.contains("required"), "a protocol requirement has no body: \(r.stdout)")
    }

    @Test("three functions over 80 lines pass; a fourth, or one over 100, fails")
    func limits() throws {
        let three = (1...3).map { Self.function("f\($0)", lines: 85) }.joined(separator: "\n")
        #expect(try run(["a.swift": three]).status == 0)
        let four = three + "\n" + Self.function("f4", lines: 81)
        let r4 = try run(["a.swift": four])
        #expect(r4.status == 1 && r4.stderr.contains("4 over 80"), "\(r4.stderr)")
        let hundred = Self.function("g", lines: 100), over = Self.function("h", lines: 101)
        #expect(try run(["a.swift": hundred]).status == 0)
        let r = try run(["a.swift": hundred, "b.swift": over])
        #expect(r.status == 1 && r.stderr.contains("1 over 100"), "\(r.stderr)")
    }
}
