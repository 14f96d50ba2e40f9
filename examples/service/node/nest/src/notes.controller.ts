import { Controller, Get, NotFoundException, Param, Req, UseGuards } from "@nestjs/common";
import { AuthGuard } from "./auth.guard";
import { NotesService } from "./notes.service";

@Controller("notes")
@UseGuards(AuthGuard)
export class NotesController {
  constructor(private readonly notes: NotesService) {}

  @Get(":id")
  async getNote(@Param("id") id: string) {
    const note = await this.notes.findById(id);
    if (!note) throw new NotFoundException();
    return note;
  }

  @Get("mine/:id")
  async getMyNote(@Param("id") id: string, @Req() req: any) {
    const note = await this.notes.findOne({ id, ownerId: req.user.id });
    if (!note) throw new NotFoundException();
    return note;
  }
}
