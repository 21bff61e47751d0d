import Foundation
import Testing
import TailorTestSupport
@testable import TailorRAG

/// Every loader on a real file of its format (Fixtures/docs, made by scripts/reference/make_documents.py).
@Suite struct LoaderTests {
    static func fixture(_ name: String) throws -> String { try TestPaths.fixtureURL(Bundle.module, "docs/" + name).path }

    static func load(_ name: String) throws -> [Document] { try Loaders.load(try fixture(name)) }

    /// Every block is exactly its span of the document text.
    func checkOffsets(_ d: Document) {
        for b in d.blocks { #expect(d.text.scalarSlice(b.start, b.end) == b.text) }
        #expect(d.text.unicodeScalars.count == (d.blocks.last?.end ?? 0))
    }

    @Test func markdownKeepsHeadingsListsTablesAndFrontMatter() throws {
        let d = try Self.load("handbook.md")[0]
        checkOffsets(d)
        #expect(d.title == "Lumen Bikes Service Handbook")
        #expect(d.metadata["author"] == "Workshop Team")
        let headings = d.blocks.filter { $0.kind == .heading }.map(\.headingPath)
        #expect(headings == [["Lumen Bikes Service Handbook"], ["Lumen Bikes Service Handbook", "Brakes"],
                             ["Lumen Bikes Service Handbook", "Brakes", "Pad wear"], ["Lumen Bikes Service Handbook", "Drivetrain"],
                             ["Lumen Bikes Service Handbook", "Tyre pressure"]])  // the last one is a setext heading
        let pads = try #require(d.blocks.first { $0.text.hasPrefix("Replace the pads") })
        #expect(pads.headingPath.last == "Pad wear")
        #expect(d.blocks.filter { $0.kind == .listItem }.count == 3)
        #expect(d.blocks.filter { $0.kind == .row }.map(\.text) == ["Part | Interval", "Chain | 3000 km", "Cassette | 9000 km"])
        #expect(d.blocks.contains { $0.kind == .code && $0.text == "torque --bolt stem --nm 5" })
        #expect(d.text.contains("See the parts list for pad codes."), "links keep their text only")
        #expect(!d.text.contains("---") && !d.text.contains("author:"))
    }

    @Test func htmlDropsBoilerplate() throws {
        let d = try Self.load("faq.html")[0]
        checkOffsets(d)
        #expect(d.title == "Lumen FAQ & Help")
        #expect(d.metadata["description"] == "Answers to common questions")
        for gone in ["UA-SHOULD-NOT-APPEAR", "footer script", "cookies", "Careers", "Shop", "All rights reserved", "Tour of Flanders", "font-family"] {
            #expect(!d.text.contains(gone), "\(gone) should be dropped")
        }
        #expect(d.blocks.first?.text == "Frequently asked questions")
        let delivery = try #require(d.blocks.first { $0.text.hasPrefix("Orders ship") })
        #expect(delivery.headingPath == ["Frequently asked questions", "Delivery"])
        #expect(delivery.text.contains("three working days from our warehouse in Ghent."))
        #expect(d.text.contains("within 30 days — we refund"), "entities decoded")
        #expect(d.blocks.filter { $0.kind == .listItem }.map(\.text) == ["Keep the original box.", "Print the return label from your account."])
        #expect(d.blocks.filter { $0.kind == .row }.map(\.text) == ["Frame | Rider height", "S | 155–170 cm", "M | 170–185 cm"])
    }

    @Test func pdfTextPerPage() throws {
        let d = try Self.load("warranty.pdf")[0]
        checkOffsets(d)
        #expect(d.title == "Lumen Warranty Terms")
        #expect(d.metadata["author"] == "Lumen Legal")
        #expect(d.metadata["pages"] == "2")
        let p1 = d.blocks.filter { $0.page == 1 }.map(\.text).joined(separator: " ")
        let p2 = d.blocks.filter { $0.page == 2 }.map(\.text).joined(separator: " ")
        #expect(p1.contains("lifetime warranty for the first owner"))
        #expect(p2.contains("800 charge cycles or three years"))
        #expect(!p1.contains("charge cycles"))
    }

    @Test func docxHeadingsListsAndTables() throws {
        let d = try Self.load("onboarding.docx")[0]
        checkOffsets(d)
        #expect(d.title == "Onboarding Guide")
        #expect(d.metadata["author"] == "People Team")
        #expect(d.blocks.filter { $0.kind == .heading }.map(\.text) == ["Onboarding Guide", "Tools", "Schedule"])
        let wrench = try #require(d.blocks.first { $0.text.contains("torque wrench") })
        #expect(wrench.headingPath == ["Onboarding Guide", "Tools"])
        #expect(d.blocks.filter { $0.kind == .listItem }.map(\.text) == ["Sign the tool register.", "Label your drawer."])
        #expect(d.blocks.filter { $0.kind == .row }.map(\.text) == ["Day | Activity", "Monday | Safety training", "Tuesday | Wheel truing"])
    }

    @Test func csvRowsWithColumnNames() throws {
        let d = try Self.load("parts.csv")[0]
        checkOffsets(d)
        #expect(d.blocks.map(\.row) == [1, 2, 3])
        #expect(d.blocks[0].text == "code: BP-100; name: Brake pad, organic; price: 12.50; notes: Standard pad for city bikes")
        #expect(d.blocks[1].text.hasSuffix("notes: For the cargo model; lasts \"twice\" as long"))
        #expect(d.blocks[2].text.hasSuffix("notes: Fits all\n2024 models"))
        let t = try Self.load("stores.tsv")[0]
        #expect(t.blocks.map(\.text) == ["city: Ghent; address: Korenmarkt 4; opening hours: 9-18",
                                         "city: Utrecht; address: Oudegracht 120; opening hours: 10-18"])
    }

    @Test func csvErrorsNameTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-csv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.csv")
        try "a,b\n1,2\n3,\"open\n4,5\n".write(to: bad, atomically: true, encoding: .utf8)
        #expect(throws: RAGError.badRecord(path: bad.path, line: 3, detail: "a quoted field is never closed; add the missing \"")) { try Loaders.load(bad.path) }
        let wide = dir.appendingPathComponent("wide.csv")
        try "a,b\n1,2\n1,2,3\n".write(to: wide, atomically: true, encoding: .utf8)
        do { _ = try Loaders.load(wide.path); Issue.record("should fail") }
        catch let e as RAGError { #expect(e.description.hasPrefix("\(wide.path):3: row has 3 fields")) }
    }

    @Test func jsonlRecordsAreDocuments() throws {
        let docs = try Self.load("tickets.jsonl")
        #expect(docs.map(\.key).map { $0.components(separatedBy: "#").last! } == ["T-1", "T-2", "T-3"])
        let t2 = docs[1]
        checkOffsets(t2)
        #expect(t2.title == "Motor cuts out")
        #expect(t2.metadata == ["id": "T-2", "priority": "high", "product": "E-Cargo", "line": "2"])
        #expect(t2.blocks.map(\.text) == ["Motor cuts out", "The e-bike motor stops assisting after ten minutes in cold weather. The battery firmware update 2.4 solves this."])
        #expect(t2.blocks[1].headingPath == ["Motor cuts out"])
    }

    @Test func jsonErrorsNameTheLineAndField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tailor-json-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("x.jsonl")
        try "{\"text\": \"ok\"}\n{\"text\": broken}\n".write(to: f, atomically: true, encoding: .utf8)
        do { _ = try Loaders.load(f.path); Issue.record("should fail") }
        catch let e as RAGError { #expect(e.description.hasPrefix("\(f.path):2: not valid JSON")) }
        try "{\"question\": \"q\", \"reply\": \"r\"}\n".write(to: f, atomically: true, encoding: .utf8)
        #expect(throws: RAGError.noTextField(path: f.path, line: 1, fields: ["question", "reply"])) { try Loaders.load(f.path) }
        let docs = try Loaders.load(f.path, options: LoaderOptions(textField: "reply"))
        #expect(docs[0].text == "r" && docs[0].metadata["question"] == "q")
        let arr = dir.appendingPathComponent("a.json")
        try "[{\"id\": 7, \"body\": \"seven\"}, {\"id\": 8, \"body\": \"eight\"}]".write(to: arr, atomically: true, encoding: .utf8)
        #expect(try Loaders.load(arr.path).map(\.key) == [arr.path + "#7", arr.path + "#8"])
    }

    @Test func encodingsAreDetectedAndReported() throws {
        let latin = try Self.load("legacy-notes.txt")[0]
        #expect(latin.blocks.map(\.text) == ["Café ride on Sunday’s route.", "Meet at the bridge at 8."])
        #expect(latin.notes.first?.contains("windows-1252") == true)
        let u16 = try Self.load("utf16-notes.txt")[0]
        #expect(u16.text == "Saddle heights are measured from the crank axle.")
        #expect(u16.notes.first?.contains("UTF-16") == true)
        // UTF-16 without a byte-order mark, found by its zero bytes.
        let noBOM = Data("Plain ASCII text in UTF-16LE.".utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] })
        #expect(try TextDecoding.decode(noBOM, path: "x").text == "Plain ASCII text in UTF-16LE.")
        #expect(throws: RAGError.self) { try TextDecoding.decode(Data([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x00, 0xff, 0x10]), path: "x") }
    }

    @Test func unreadableFilesGiveClearErrors() throws {
        do { _ = try Self.load("broken.pdf"); Issue.record("should fail") }
        catch let e as RAGError { #expect(e.description.contains("broken.pdf: not a readable PDF")) }
        #expect(throws: RAGError.unsupportedType(path: "/tmp/x.xyz")) { try Loaders.load("/tmp/x.xyz") }
        do { _ = try Loaders.load("/nonexistent/file.md"); Issue.record("should fail") }
        catch let e as RAGError { #expect(e.description.hasPrefix("/nonexistent/file.md: cannot read")) }
    }

    @Test func globs() {
        #expect(Glob.matches("*.md", "docs/a/readme.md"))
        #expect(!Glob.matches("docs/*.md", "docs/a/readme.md"))
        #expect(Glob.matches("docs/**/*.md", "docs/a/readme.md"))
        #expect(Glob.matches("docs/**/*.md", "docs/readme.md"))
        #expect(Glob.matches("draft-?.txt", "x/draft-1.txt"))
        #expect(Glob.matches("[ab]*.csv", "b-data.csv") && !Glob.matches("[!ab]*.csv", "b-data.csv"))
    }
}
